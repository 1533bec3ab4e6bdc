"""`trecs-eval pipeline train-tagger / eval-tagger` end to end on tiny files; bad files exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from trecs_eval.cli import main

WORDS = ["a dog on grass", "sky above a tree", "grass and sky", "a dog and a tree"]
TAGS = ["dog dog grass grass", "sky-other sky-other tree tree", "grass sky-other sky-other",
        "dog dog tree tree tree"]


def _write(directory: Path, words: list[str], tags: list[str]) -> tuple[Path, Path]:
    words_path, tags_path = directory / "x.words.txt", directory / "x.cleaned_tags.txt"
    words_path.write_text("\n".join(words) + "\n")
    tags_path.write_text("\n".join(tags) + "\n")
    return words_path, tags_path


@pytest.mark.parametrize("kind", ["hmm", "word-majority"])
def test_train_then_eval(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words, tags = _write(tmp_path, WORDS, TAGS)
    model = tmp_path / "model.pt"
    code = main(["-q", "pipeline", "train-tagger", "--words", str(words), "--tags", str(tags),
                 "--kind", kind, "--out", str(model), "--seed", "1", "--transition-power", "1"])
    assert code == 0 and model.is_file()
    code = main(["pipeline", "eval-tagger", "--model", str(model), "--words", str(words),
                 "--tags", str(tags), "--per-label"])
    out = capsys.readouterr().out
    assert code == 0
    assert "word accuracy:" in out and "macro-F1:" in out
    assert "sky-other" in out.split("precision")[1]  # the per-label table lists the labels


def test_ids_give_image_label_bags(tmp_path: Path) -> None:
    words, tags = _write(tmp_path, WORDS, TAGS)
    ids = tmp_path / "x.ids.txt"
    ids.write_text("1_1\n2_1\n1_2\n3_1\n")
    code = main(["-q", "pipeline", "train-tagger", "--words", str(words), "--tags", str(tags),
                 "--kind", "hmm", "--ids", str(ids), "--out", str(tmp_path / "m.pt")])
    assert code == 0


def test_mismatched_line_exits_2_with_file_and_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad_tags = list(TAGS)
    bad_tags[2] = "grass sky-other"
    words, tags = _write(tmp_path, WORDS, bad_tags)
    code = main(["pipeline", "train-tagger", "--words", str(words), "--tags", str(tags),
                 "--kind", "majority", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tags}:3: field 'tags': 2 tags but 3 words" in err
    assert "Traceback" not in err


def test_unknown_kind_and_missing_model_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words, tags = _write(tmp_path, WORDS, TAGS)
    assert main(["pipeline", "train-tagger", "--words", str(words), "--tags", str(tags), "--kind", "nueral",
                 "--out", str(tmp_path / "m.pt")]) == 2
    assert "did you mean 'neural'" in capsys.readouterr().err
    assert main(["pipeline", "eval-tagger", "--model", str(tmp_path / "none.pt"), "--words", str(words),
                 "--tags", str(tags)]) == 2
    assert "none.pt: tagger checkpoint not found" in capsys.readouterr().err
