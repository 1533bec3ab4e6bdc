"""The ``trecs-eval`` command line: parses arguments and calls one function; no logic here.

Each subcommand lives in ``trecs_eval/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``handler=<callable(args) -> int>``.
Modules are discovered automatically, so adding a subcommand touches no shared file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from trecs_eval import __version__
from trecs_eval.errors import TrecsEvalError, describe_os_error
from trecs_eval.interrupt import check as check_interrupt
from trecs_eval.interrupt import ctrl_c_stops

EXIT_OK, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trecs-eval",
        description="Evaluate grounded text-to-image systems (TReCS and baselines) on Localized Narratives.",
    )
    parser.add_argument("--version", action="version", version=f"trecs-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show details and tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs (CI)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import trecs_eval.commands as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"trecs_eval.commands.{module_info.name}")
        module.register(subparsers)
    return parser


_OWN_LOGGERS = ("trecs_eval", "baselines", "reference_pipeline", "reports")


def _own_info_or_any_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in _OWN_LOGGERS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO),
        format="%(message)s",
    )
    if not args.verbose:
        # Libraries (open_clip logs model loading on the root logger) speak only when it matters.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_own_info_or_any_warning)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        with ctrl_c_stops():
            code = int(args.handler(args) or EXIT_OK)
            check_interrupt()  # a Ctrl-C whose KeyboardInterrupt something swallowed still stops us
        return code
    except TrecsEvalError as err:
        if args.verbose:
            raise
        print(f"trecs-eval: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:  # the system refused (disk full, permissions, a vanished file): one line
        if args.verbose:
            raise
        print(f"trecs-eval: error: {describe_os_error(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("trecs-eval: interrupted; finished work is on disk, re-run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
