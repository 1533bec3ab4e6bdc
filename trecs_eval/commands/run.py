"""``trecs-eval run CONFIG``: run (or resume) the evaluation a TOML config describes."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from trecs_eval.config import DEVICES, RunConfig, load_config
from trecs_eval.errors import ConfigError, suggest


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run or resume an evaluation from a TOML config",
        description="Generate every system's images, extract features, compute metrics and write the "
                    "run directory (config.out_dir). Re-running the same config resumes.")
    parser.add_argument("config", type=Path, help="run config (TOML); see configs/")
    parser.add_argument("--force", action="store_true",
                        help="reuse out_dir although its config differs (changed systems are regenerated)")
    parser.add_argument("--device", choices=DEVICES, default=None, help="override the config's device")
    parser.add_argument("--uncalibrated-weights", action="store_true",
                        help="seeded random Inception/CLIP weights; results are stamped UNCALIBRATED")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate only the first N narratives (overrides dataset.limit; a quick look "
                             "at a large benchmark)")
    parser.add_argument("--metrics", default=None, metavar="NAMES",
                        help="compute only these of the config's metrics (comma-separated); with a small "
                             "--limit, leave out kid (>= 50 images) and r_precision (>= 100 narratives)")
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY_CLUSTER, default=None, metavar="ADDRESS",
                        help="run on Ray (pip install 'trecs-eval[ray]'): no ADDRESS starts a local cluster, "
                             "'auto' joins the one running on this node, HOST:PORT or ray://HOST:10001 a "
                             "remote head; the run directory must be on a filesystem all nodes share")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or info logs (CI)")
    parser.set_defaults(handler=run_command)


LOCAL_RAY_CLUSTER = ""  # `--ray` without an address


def with_engine(config: RunConfig, ray: str | None) -> RunConfig:
    """``--ray [ADDRESS]`` -> ``[execution] engine = "ray"`` (the engine is not hashed: resuming a
    local run on Ray, or the reverse, is allowed)."""
    if ray is None:
        return config
    address = ray or None
    return dataclasses.replace(config, execution=dataclasses.replace(config.execution, engine="ray",
                                                                     address=address))


def with_overrides(config: RunConfig, device: str | None, uncalibrated: bool,
                   limit: int | None = None, metrics: str | None = None) -> RunConfig:
    """The config with command-line overrides applied (the CLI → frozen config direction)."""
    if metrics is not None:
        wanted = [m.strip() for m in metrics.split(",") if m.strip()]
        configured = [m.name for m in config.metrics]
        for name in wanted:
            if name not in configured:
                raise ConfigError(f"--metrics: {name!r} is not a metric of this config"
                                  f"{suggest(name, configured)}")
        config = dataclasses.replace(config, metrics=tuple(m for m in config.metrics if m.name in wanted))
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit {limit}: must be at least 1")
        config = dataclasses.replace(config, dataset=dataclasses.replace(config.dataset, limit=limit))
    if device is not None:
        config = dataclasses.replace(config, device=device)
    if uncalibrated:
        extractors = dataclasses.replace(config.extractors, uncalibrated=True)
        config = dataclasses.replace(config, extractors=extractors)
    return config


def run_command(args: argparse.Namespace) -> int:
    from trecs_eval.commands._run_output import print_banner, print_summary, set_quiet
    from trecs_eval.harness import check_names, run_one
    from trecs_eval.preflight import preflight

    quiet = bool(getattr(args, "quiet", False))
    set_quiet(quiet)
    config = with_overrides(load_config(args.config), args.device, args.uncalibrated_weights, args.limit,
                            args.metrics)
    config = with_engine(config, args.ray)
    check_names(config)  # a bad config is one error line, not a banner and then an error
    preflight(config, str(args.config))
    if config.extractors.uncalibrated:
        print_banner("CLIP" if config.extractors.inception_weights else "Inception, CLIP")
    outcome = run_one(config, force=args.force, progress=not quiet,
                      resume_command=f"trecs-eval run {args.config}", source=str(args.config))
    print_summary(outcome)
    return 0
