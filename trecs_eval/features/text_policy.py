"""How a long narrative becomes CLIP text inputs (CLIP reads at most 77 tokens, start/end included).

Two policies:

* ``truncate`` -- CLIP's standard: the whole caption is tokenized and cut at 77 tokens (the end
  token kept). The result reports the fraction of narratives that lost tokens.
* ``utterances`` (default) -- the caption is split into units at utterance boundaries (the
  ``timed_caption`` utterances, when their words are exactly the caption's words) or else at
  sentence ends (``. ! ? ;``); consecutive units are packed greedily into chunks of at most
  77 tokens; a unit that alone is too long is split between words, packed the same way.
  Each chunk is embedded, the normalized chunk embeddings are averaged with equal weight and
  the mean is renormalized.

Why ``utterances`` is the default: a Localized Narrative describes the image in the order the
annotator's mouse moved, so the objects described last are typically the background and
small objects; truncation silently drops exactly those from the long narratives, and a
CLIPScore or R-precision would then not judge whether they were drawn. Chunking keeps every
word in the text side of the score (``truncated_fraction`` is 0 unless a single word exceeds
the context). The cost: averaging chunk embeddings is not how CLIP was trained, so values
are not comparable with papers that truncate; pass ``text_policy="truncate"`` for those.

Token counts are those of the model's own tokenizer (``count_tokens(text)``: word-piece
tokens without the start/end tokens), so the 77 limit is checked, not estimated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trecs_eval.data.narratives import Narrative, tokenize
from trecs_eval.errors import ConfigError, TrecsEvalError, suggest

TEXT_POLICIES = ("utterances", "truncate")
DEFAULT_TEXT_POLICY = "utterances"
SPECIAL_TOKENS = 2  # CLIP's <start_of_text> and <end_of_text> take 2 of the 77 positions

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class TextChunks:
    """The texts embedded for one narrative and what was lost.

    ``n_tokens`` are the tokens of each chunk (without start/end), before any truncation;
    ``truncated`` is True when some tokens of the narrative are not embedded.
    """

    chunks: tuple[str, ...]
    n_tokens: tuple[int, ...]
    truncated: bool
    over_length: bool  # the whole caption exceeds the context (whatever the policy)


def check_policy(policy: str) -> str:
    """Return ``policy`` or raise ConfigError with did-you-mean."""
    if policy not in TEXT_POLICIES:
        raise ConfigError(f"unknown text policy {policy!r}{suggest(policy, TEXT_POLICIES)}")
    return policy


def narrative_units(narrative: Narrative) -> list[str]:
    """Utterances when their words equal the caption's words; else the caption's sentences."""
    utterances = [u.utterance.strip() for u in narrative.timed_caption if u.utterance.strip()]
    if utterances and tokenize(" ".join(utterances)) == tokenize(narrative.caption):
        return utterances
    return [s for s in _SENTENCE_END.split(narrative.caption.strip()) if s]


def _pack(pieces: Sequence[str], counts: Sequence[int], max_tokens: int) -> list[list[str]]:
    """Greedy packing of consecutive pieces into groups whose summed counts stay <= max_tokens."""
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for piece, count in zip(pieces, counts, strict=True):
        if current and used + count > max_tokens:
            groups.append(current)
            current, used = [], 0
        current.append(piece)
        used += count
    if current:
        groups.append(current)
    return groups


def _split_long_unit(unit: str, count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Split one over-long unit between words into pieces of <= max_tokens (a lone huge word stays whole)."""
    words = unit.split()
    return [" ".join(g) for g in _pack(words, [count_tokens(w) for w in words], max_tokens)]


def chunk_utterances(units: Sequence[str], count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Chunks of consecutive units, each <= ``max_tokens`` tokens; every word of every unit kept.

    Packing adds per-piece counts (CLIP's BPE never merges across whitespace); each chunk is
    then recounted as a whole and re-split between words if the sum was optimistic.
    """
    pieces: list[str] = []
    for unit in units:
        n = count_tokens(unit)
        pieces.extend(_split_long_unit(unit, count_tokens, max_tokens) if n > max_tokens else [unit])
    chunks: list[str] = []
    for group in _pack(pieces, [count_tokens(p) for p in pieces], max_tokens):
        text = " ".join(group)
        if count_tokens(text) > max_tokens and len(text.split()) > 1:
            chunks.extend(_split_long_unit(text, count_tokens, max_tokens))
        else:
            chunks.append(text)
    return chunks


def chunk_narrative(
    narrative: Narrative, policy: str, count_tokens: TokenCounter, context_length: int = 77
) -> TextChunks:
    """The chunks a policy embeds for ``narrative`` (see the module docstring)."""
    check_policy(policy)
    caption = narrative.caption.strip()
    if not caption:
        raise TrecsEvalError(f"narrative {narrative.item_id!r} has an empty caption; nothing to embed")
    max_tokens = context_length - SPECIAL_TOKENS
    total = count_tokens(caption)
    if policy == "truncate":
        return TextChunks((caption,), (total,), total > max_tokens, total > max_tokens)
    chunks = chunk_utterances(narrative_units(narrative), count_tokens, max_tokens)
    counts = tuple(count_tokens(c) for c in chunks)
    return TextChunks(tuple(chunks), counts, any(c > max_tokens for c in counts), total > max_tokens)
