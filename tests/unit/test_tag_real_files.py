"""Taggers on the first lines of the real LN-COCO val TReCS files (read in place, never copied)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from reference_pipeline.tag import train_tagger
from reference_pipeline.tag.cli import image_label_bags
from reference_pipeline.tag.files import read_image_ids, read_words_and_tags
from trecs_eval.data.sequence_labels import read_sequence_labels
from trecs_eval.metrics.tag_accuracy import word_accuracy

N_LINES = 500
N_TRAIN = 400


def _head(source: Path, target: Path, n: int) -> Path:
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(islice(handle, n)), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def real_slice(sequence_labels_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("real")
    paths = {name: _head(sequence_labels_dir / f"val_coco.{name}.txt", tmp / f"val_coco.{name}.txt", N_LINES)
             for name in ("words", "cleaned_tags", "ids")}
    labels = read_sequence_labels(tmp, "val_coco", tags="cleaned_tags")
    words, tags = [list(w) for w in labels.words], [list(t) for t in labels.tags or ()]
    images = [item_id.rsplit("_", 1)[0] for item_id in labels.ids]
    return words, tags, images, paths


def test_cli_reader_agrees_with_the_data_layer_reader(real_slice) -> None:
    words, tags, images, paths = real_slice
    assert len(words) == len(tags) == len(images) == N_LINES
    assert read_words_and_tags(paths["words"], paths["cleaned_tags"]) == (words, tags)
    assert read_image_ids(paths["ids"], N_LINES) == images


def test_baselines_rank_as_published_and_hmm_respects_image_bags(real_slice) -> None:
    words, tags, images, _ = real_slice
    train_w, train_t, test_w, test_t = words[:N_TRAIN], tags[:N_TRAIN], words[N_TRAIN:], tags[N_TRAIN:]
    accuracy = {}
    for kind in ("majority", "word-majority", "fill"):
        tagger = train_tagger(kind, train_w, train_t)
        accuracy[kind] = word_accuracy(test_t, [tagger.tag(w) for w in test_w])
    # published order on LN-COCO: majority 29.5 % < per-word majority 38.9 % < fill ≈ 54 %
    assert accuracy["majority"] < accuracy["word-majority"] < accuracy["fill"], accuracy
    bags = image_label_bags(images, tags)
    hmm = train_tagger("hmm", train_w, train_t, label_bags=bags[:N_TRAIN])
    for seq, bag in zip(test_w[:20], bags[N_TRAIN:], strict=False):
        known_bag = bag & set(hmm.labels)
        assert set(hmm.tag(seq, allowed_labels=bag)) <= known_bag
