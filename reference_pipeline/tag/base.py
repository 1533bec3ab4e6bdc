"""What every tagger is (the :class:`Tagger` protocol) and helpers they share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from trecs_eval.errors import InputError, TrecsEvalError


@runtime_checkable
class Tagger(Protocol):
    """Maps a narrative's words to one COCO-Stuff label per word.

    ``allowed_labels`` restricts the output to a label bag (constrained mode, e.g. the labels of
    the image when they are known); ``None`` tags freely among the labels seen in training.
    Labels the tagger never saw in training cannot be produced and are ignored in the bag; a bag
    with no known label is an error.
    """

    name: str

    def tag(self, words: Sequence[str], allowed_labels: Collection[str] | None = None) -> list[str]:
        ...


class SerializableTagger(Tagger, Protocol):
    """A tagger that :func:`reference_pipeline.tag.save_tagger` can write (plain types/tensors only)."""

    def state_dict(self) -> dict[str, Any]:
        ...


def check_training_data(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> None:
    """Raises InputError unless words and tags are parallel, non-empty sequences of strings."""
    if len(words) != len(tags):
        raise InputError(f"{len(words)} word sequences but {len(tags)} tag sequences", field="tags")
    if not words:
        raise InputError("no training narratives", field="words")
    for index, (word_seq, tag_seq) in enumerate(zip(words, tags, strict=True)):
        if isinstance(word_seq, str) or isinstance(tag_seq, str):
            raise InputError("each narrative must be a sequence of tokens, not a string",
                             line=index + 1, field="words")
        if len(word_seq) != len(tag_seq):
            raise InputError(f"{len(word_seq)} words but {len(tag_seq)} tags", line=index + 1,
                             field="tags")


def label_counts(tags: Sequence[Sequence[str]]) -> Counter[str]:
    """How often each label occurs over all words."""
    return Counter(label for seq in tags for label in seq)


def known_allowed(allowed_labels: Collection[str] | None, known: Collection[str],
                  tagger_name: str) -> set[str] | None:
    """The allowed labels this tagger knows; None means unconstrained; an empty result is an error."""
    if allowed_labels is None:
        return None
    if isinstance(allowed_labels, str):
        raise TrecsEvalError("allowed_labels must be a collection of labels, not a string")
    usable = set(allowed_labels) & set(known)
    if not usable:
        shown = ", ".join(sorted(allowed_labels)[:10]) or "(empty)"
        raise TrecsEvalError(
            f"tagger {tagger_name!r}: none of the allowed labels [{shown}] was seen in training",
            hint="pass allowed_labels=None to tag without a label bag",
        )
    return usable


def check_words(words: Sequence[str]) -> None:
    """A narrative to tag must be a sequence of tokens (a bare string is a common mistake)."""
    if isinstance(words, str):
        raise TrecsEvalError("tag() takes a sequence of words, not a string; split the text first")
