"""``trecs-eval data {check,download,toyworld}``: validate, fetch and synthesize evaluation data."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from trecs_eval.errors import InputError, TrecsEvalError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="check, download or synthesize evaluation data")
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    check = sub.add_parser("check", help="validate a LN JSONL file, a TReCS label folder or a "
                                         "toyworld folder and print what it holds")
    check.add_argument("path", type=Path)
    check.add_argument("--keep-going", action="store_true",
                       help="list every malformed line instead of stopping at the first")
    check.set_defaults(handler=run_check)

    from trecs_eval.data.download_sources import SOURCES

    download = sub.add_parser("download", help="download public data (resumable, sha256-checked)",
                              description="datasets: " + "; ".join(
                                  f"{s.name}: {s.description}" for s in SOURCES.values()))
    download.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SOURCES))
    download.add_argument("--root", type=Path, default=Path("data"),
                          help="folder to download into (default: data)")
    download.add_argument("--list", action="store_true",
                          help="list every source: size, what needs it, present or not under --root")
    download.add_argument("--base-url", default=None,
                          help="mirror holding the same relative paths "
                               "(default: $TRECS_EVAL_DOWNLOAD_BASE_URL or the official host)")
    download.add_argument("--force", action="store_true", help="download again even if recorded")
    download.set_defaults(handler=run_download)

    _register_prepare(sub)

    toy = sub.add_parser("toyworld", help="write the synthetic toyworld dataset")
    toy.add_argument("--n", type=int, default=500, help="number of scenes (default 500)")
    toy.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    toy.add_argument("--out", type=Path, required=True, help="output folder")
    toy.add_argument("--image-size", type=int, default=256, help="image side in pixels (default 256)")
    toy.add_argument("--no-shifted", dest="shifted", action="store_false",
                     help="skip the shifted image set")
    toy.set_defaults(handler=run_toyworld)


def _kind(path: Path) -> str:
    """"toyworld", "labels" or "narratives" for a path given to ``data check``."""
    if path.is_dir():
        if (path / "narratives.jsonl").is_file() and (path / "sequence_labels").is_dir():
            return "toyworld"
        if any(path.glob("*.ids.txt")):
            return "labels"
        return "narratives"
    if path.name.endswith(".txt"):
        return "labels"
    return "narratives"


def run_check(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise InputError("no such file or directory", str(path))
    kind = _kind(path)
    if kind == "toyworld":
        return _check_toyworld(path)
    if kind == "labels":
        return _check_labels(path if path.is_dir() else path.parent)
    return _check_narratives(path, args.keep_going)


def _print(title: str, counts: dict[str, object]) -> None:
    print(title)
    for key, value in counts.items():
        print(f"  {key + ':':<15} {value:,}" if isinstance(value, int) else f"  {key + ':':<15} {value}")


def _check_narratives(path: Path, keep_going: bool) -> int:
    from trecs_eval.data.localized_narratives import read_narratives

    result = read_narratives(path, on_error="skip" if keep_going else "raise")
    narratives = result.narratives
    _print(f"Localized Narratives: {path}", {
        "files": len(result.paths),
        "narratives": len(narratives),
        "images": len({(n.dataset_id, n.image_id) for n in narratives}),
        "annotators": len({n.annotator_id for n in narratives}),
        "utterances": sum(len(n.timed_caption) for n in narratives),
        "words": sum(len(n.words) for n in narratives),
        "trace points": sum(len(s) for n in narratives for s in n.traces),
        "datasets": ", ".join(sorted({n.dataset_id for n in narratives})) or "-",
        "problems": len(result.skipped),
    })
    for skipped in result.skipped:
        print(f"  problem: {skipped}")
    if result.skipped:
        raise InputError(f"{len(result.skipped)} malformed line(s); first: {result.skipped[0]}")
    if not narratives:
        raise InputError("holds no narratives (an empty file is not an evaluation set)", str(path))
    return 0


def _check_labels(root: Path) -> int:
    from trecs_eval.data.sequence_labels import list_splits, read_sequence_labels

    splits = list_splits(root)
    if not splits:
        raise InputError("no TReCS split here (needs {split}.ids.txt and {split}.words.txt)", str(root))
    for split in splits:
        labels = read_sequence_labels(root, split)
        _print(f"TReCS sequence labels: {root}/{split}", {
            "lines": len(labels),
            "words": labels.n_words,
            "tags file": labels.tags_file or "none",
            "labels": len(labels.label_counts()),
            "problems": 0,
        })
    return 0


def _check_toyworld(root: Path) -> int:
    from trecs_eval.data.evalset import load_toyworld

    evalset = load_toyworld(root)
    tags = Counter(t for item in evalset for t in (item.gold_tags or ()))
    problems = len(evalset.missing.entries) + len(evalset.skipped)
    _print(f"toyworld: {root}", {
        "narratives": len(evalset),
        "images": sum(item.reference_image is not None for item in evalset),
        "shifted": sum("shifted_image" in item.extra for item in evalset),
        "segmentations": sum(item.gold_segmentation is not None for item in evalset),
        "words": sum(len(item.narrative.words) for item in evalset),
        "labels": len(tags),
        "manifest": "yes" if (root / "manifest.json").is_file() else "MISSING",
        "problems": problems,
    })
    if evalset.missing:
        print(evalset.missing.format(max_lines=20))
        raise InputError(f"toyworld folder is incomplete: {evalset.missing.format(0).splitlines()[0]}",
                         str(root))
    return 0


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    from trecs_eval.data.prepare import BENCHMARKS, DEFAULT_TAGGER

    prepare = sub.add_parser("prepare", help="turn the downloads into a ready benchmark (resumable)",
                             description="Builds the evaluation set and its missing-items report, the "
                                         "mask bank, the caption bank and the tagger under --root; "
                                         "finished steps are skipped.")
    prepare.add_argument("benchmark", choices=BENCHMARKS)
    prepare.add_argument("--root", type=Path, default=Path("data"),
                         help="the folder `data download` wrote (default: data)")
    prepare.add_argument("--tagger", default=DEFAULT_TAGGER,
                         help=f"tagger kind (default {DEFAULT_TAGGER}; fill, hmm, majority, word-majority)")
    prepare.add_argument("--seed", type=int, default=0, help="tagger seed (default 0)")
    prepare.add_argument("--force", action="store_true", help="redo every step")
    prepare.set_defaults(handler=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from trecs_eval.data.prepare import PrepareOptions, prepare

    options = PrepareOptions(tagger=args.tagger, seed=args.seed, force=args.force,
                             progress=not getattr(args, "quiet", False))
    prepare(args.benchmark, args.root, options)
    print(f"{args.benchmark}: ready under {os.fspath(args.root)} (steps in {args.root / 'prepared.json'})")
    return 0


def print_source_list(root: Path) -> None:
    """One line per source: name, size, what needs it, present / partial / absent under ``root``."""
    from trecs_eval.data.download import source_status
    from trecs_eval.data.download_sources import SOURCES

    rows = [(s.name, s.size, source_status(root, s), s.needed_by) for s in SOURCES.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"sources under {os.fspath(root)}:")
    for name, size, status, needed in rows:
        print(f"  {name:<{widths[0]}}  {size:<{widths[1]}}  {status:<{widths[2]}}  needed by: {needed}")


def run_download(args: argparse.Namespace) -> int:
    from trecs_eval.data.download import download, get_source

    if args.list:
        print_source_list(args.root)
        return 0
    if not args.names:
        raise InputError("name at least one source (or pass --list to see them)")
    for name in args.names:
        get_source(name)  # all names checked before any transfer starts
    for name in args.names:
        paths = download(name, args.root, base_url=args.base_url, force=args.force,
                         progress=not args.quiet)
        print(f"{name}: {len(paths)} file(s) in {os.fspath(args.root)} "
              f"(sha256 in {args.root / 'manifest.json'})")
    return 0


def run_toyworld(args: argparse.Namespace) -> int:
    if args.n < 1 or args.image_size < 16:
        raise InputError("--n must be >= 1 and --image-size >= 16")
    try:
        from trecs_eval.data.toyworld import write_toyworld
    except ImportError as err:
        raise TrecsEvalError(f"the toyworld generator is not available ({err})") from None
    write_toyworld(args.out, n=args.n, seed=args.seed, image_size=args.image_size,
                   shifted=args.shifted, progress=not args.quiet)
    print(f"toyworld: {args.n} scenes (seed {args.seed}) in {args.out}; "
          f"check with `trecs-eval data check {args.out}`")
    return 0
