"""Mutation check: apply each recorded plausible bug alone to a scratch copy and run the tests
that should catch it.

Every ``benchmarks/mutations/*.toml`` holds entries::

    [[mutation]]
    name = "one-sided gate p"
    file = "trecs_eval/metrics/intervals.py"
    find = "exact text to replace (must occur exactly once)"
    replace = "the mutated text"
    tests = ["tests/unit/test_gate.py::test_the_gate_p_value_is_two_sided"]

The working tree's files (tracked and untracked-but-not-ignored, as ``git ls-files`` lists them)
are copied once into a temporary directory; for each mutation the one file is changed there, its
tests run with this interpreter (``PYTHONPATH`` = the scratch copy, so the copy is what is
imported), and the file is restored. A mutation is *caught* when its tests fail (pytest exit 1),
*survived* when they pass, an *error* otherwise (its text not found exactly once, tests not
collected, a timeout). First the tests run once unmutated (``--no-baseline`` skips it): a test
that fails without a mutation catches nothing.

    python benchmarks/mutation_check.py                  # every file, every mutation
    python benchmarks/mutation_check.py --only "one-sided gate p" benchmarks/mutations/gate.toml

Exit 0 when every mutation was caught, 1 when any survived or erred, 2 on a malformed file.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTATIONS_DIR = ROOT / "benchmarks" / "mutations"
FIELDS = {"name": str, "file": str, "find": str, "replace": str, "tests": list}
DEFAULT_TIMEOUT_S = 900


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    source: str  # the .toml it came from, for messages


class MutationFileError(Exception):
    """A malformed mutation file: the message names the file, the entry and the field."""


def read_mutations(path: Path) -> list[Mutation]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise MutationFileError(f"{path}: {err}") from None
    entries = data.get("mutation", [])
    if not isinstance(entries, list) or not entries:
        raise MutationFileError(f"{path}: no [[mutation]] entries")
    out = []
    for i, entry in enumerate(entries):
        for key, kind in FIELDS.items():
            # an empty ``replace`` is allowed: deleting a guard is a mutation too
            if not isinstance(entry.get(key), kind) or (not entry[key] and key != "replace"):
                raise MutationFileError(f"{path}: mutation[{i}] ({entry.get('name', '?')}): field "
                                        f"{key!r} must be a non-empty {kind.__name__}")
        if entry["find"] == entry["replace"]:
            raise MutationFileError(f"{path}: mutation[{i}] ({entry['name']}): replace equals find")
        out.append(Mutation(entry["name"], entry["file"], entry["find"], entry["replace"],
                            tuple(str(t) for t in entry["tests"]), str(path.relative_to(ROOT))))
    return out


def working_tree_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree (paths relative to ROOT)."""
    found = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=ROOT, capture_output=True, check=True)
    return [p for p in found.stdout.decode().split("\0") if p and (ROOT / p).is_file()]


def scratch_copy(files: list[str]) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="trecs-eval-mutations-"))
    for rel in files:
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return scratch


def run_tests(scratch: Path, tests: list[str], timeout_s: int) -> tuple[int, str]:
    """pytest's exit code on ``tests`` in ``scratch`` (124 on timeout) and the tail of its output."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    if importlib.util.find_spec("xdist") is not None:
        command[4:4] = ["-n", "0"]
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout_s} s"
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return done.returncode, " / ".join(tail)


def check(mutation: Mutation, scratch: Path, timeout_s: int) -> tuple[str, str]:
    """(outcome, detail): outcome is caught, survived or error."""
    path = scratch / mutation.file
    if not path.is_file():
        return "error", f"{mutation.file} does not exist"
    original = path.read_text(encoding="utf-8")
    count = original.count(mutation.find)
    if count != 1:
        return "error", f"find text occurs {count} times in {mutation.file} (must be exactly once)"
    path.write_text(original.replace(mutation.find, mutation.replace), encoding="utf-8")
    try:
        code, tail = run_tests(scratch, list(mutation.tests), timeout_s)
    finally:
        path.write_text(original, encoding="utf-8")
    if code == 1:
        return "caught", tail
    if code == 0:
        return "survived", tail
    return "error", f"pytest exit {code}: {tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help="mutation files (default: benchmarks/mutations/*.toml)")
    parser.add_argument("--only", action="append", default=[], help="run only the mutation with this name")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds per pytest run")
    args = parser.parse_args(argv)
    files = [p.resolve() for p in args.files] or sorted(MUTATIONS_DIR.glob("*.toml"))
    try:
        mutations = [m for f in files for m in read_mutations(f) if not args.only or m.name in args.only]
    except MutationFileError as err:
        print(f"mutation_check: {err}", file=sys.stderr)
        return 2
    if not mutations:
        print("mutation_check: no mutations selected", file=sys.stderr)
        return 2
    scratch = scratch_copy(working_tree_files())
    try:
        return _run_all(mutations, scratch, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # our own temporary directory


def _run_all(mutations: list[Mutation], scratch: Path, args: argparse.Namespace) -> int:
    if not args.no_baseline:
        tests = list(dict.fromkeys(t for m in mutations for t in m.tests))
        code, tail = run_tests(scratch, tests, args.timeout)
        if code != 0:
            print(f"baseline: the unmutated tests do not pass (pytest exit {code}): {tail}")
            return 1
        print(f"baseline: {len(tests)} tests pass unmutated")
    outcomes: dict[str, int] = {"caught": 0, "survived": 0, "error": 0}
    for mutation in mutations:
        start = time.perf_counter()
        outcome, detail = check(mutation, scratch, args.timeout)
        outcomes[outcome] += 1
        note = "" if outcome == "caught" else f"  -- {detail}"
        print(f"{outcome:<8} {mutation.name}  ({mutation.file}; {len(mutation.tests)} tests; "
              f"{time.perf_counter() - start:.0f} s; {mutation.source}){note}", flush=True)
    print(f"{len(mutations)} mutations: {outcomes['caught']} caught, {outcomes['survived']} survived, "
          f"{outcomes['error']} errors")
    return 0 if outcomes["caught"] == len(mutations) else 1


if __name__ == "__main__":
    sys.exit(main())
