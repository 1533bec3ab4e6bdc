"""``trecs-eval human plan|power|serve|export|import|analyze``: side-by-side human studies."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trecs_eval.atomic import write_text
from trecs_eval.errors import ConfigError


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("human", help="side-by-side human studies: plan, power, serve, export, "
                                                 "import, analyze (docs/human-studies.md)")
    sub = parser.add_subparsers(dest="human_command", metavar="STEP", required=True)
    plan = sub.add_parser("plan", help="freeze a study (items, questions, raters, checks) from a run")
    plan.add_argument("run", type=Path, help="run directory")
    plan.add_argument("--systems", required=True, help="comma list of systems to compare (>= 2)")
    plan.add_argument("--questions", default="realism,alignment", help="of realism, alignment, trace")
    plan.add_argument("--judgments-per-pair", type=int, default=5, help="raters per (item, pair) (default 5)")
    plan.add_argument("--items", type=int, default=100, help="items drawn from the run (default 100)")
    plan.add_argument("--out", type=Path, required=True, help="the study folder to write")
    plan.add_argument("--raters", type=int, help="number of raters (default: from --tasks-per-rater)")
    plan.add_argument("--tasks-per-rater", type=int, default=60, help="regular pages per rater (default 60)")
    plan.add_argument("--attention-rate", type=float, default=0.1, help="gold pairs per regular page")
    plan.add_argument("--attention-min-pass", type=float, default=0.8,
                      help="a rater passing fewer attention-check answers than this share is excluded")
    plan.add_argument("--attention-system", default="noise", help="the clearly broken system (default noise)")
    plan.add_argument("--gold-system", help="the system it is shown against (default real, if in the run)")
    plan.add_argument("--repeat-rate", type=float, default=0.05, help="repeated pages per regular page")
    plan.add_argument("--seed", type=int, default=0)
    power = sub.add_parser("power", help="power of a pair's win-rate test, by simulation of the design")
    power.add_argument("study", type=Path)
    power.add_argument("--effect", type=float, default=0.05, help="win-rate difference from 0.5")
    power.add_argument("--tie-rate", type=float, default=0.1)
    power.add_argument("--item-sd", type=float, default=0.1, help="SD of item effects (probability scale)")
    power.add_argument("--rater-sd", type=float, default=0.05, help="SD of rater effects")
    power.add_argument("--sims", type=int, default=200)
    power.add_argument("--seed", type=int, default=0)
    serve = sub.add_parser("serve", help="serve the study's pages; judgments go to STUDY/judgments.sqlite")
    serve.add_argument("study", type=Path)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--public-url", help="base URL raters reach the server at (for the printed links)")
    export = sub.add_parser("export", help="tasks.csv + template.html for a crowd platform")
    export.add_argument("study", type=Path)
    export.add_argument("--format", choices=("mturk", "prolific", "csv"), default="csv")
    export.add_argument("--base-url", help="URL where the study's images/ folder is uploaded")
    export.add_argument("--embed-images", action="store_true", help="embed images as data URIs instead")
    export.add_argument("--out", type=Path, help="output folder (default STUDY/export/FORMAT)")
    imp = sub.add_parser("import", help="import a crowd platform's result CSV")
    imp.add_argument("study", type=Path)
    imp.add_argument("results", type=Path, nargs="+")
    analyze = sub.add_parser("analyze", help="win rates, ranking, agreement; writes STUDY/analysis.*")
    analyze.add_argument("study", type=Path)
    analyze.add_argument("--bootstrap", type=int, default=200, help="Bradley–Terry bootstrap resamples")
    analyze.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run_human)


def run_human(args: argparse.Namespace) -> int:
    handlers = {"plan": _plan, "power": _power, "serve": _serve, "export": _export, "import": _import,
                "analyze": _analyze}
    return handlers[args.human_command](args)


def _plan(args: argparse.Namespace) -> int:
    from trecs_eval.human.plan import PlanSpec, plan_study

    spec = PlanSpec(systems=_names(args.systems), questions=_names(args.questions),
                    judgments_per_pair=args.judgments_per_pair, n_items=args.items,
                    tasks_per_rater=args.tasks_per_rater, n_raters=args.raters,
                    attention_rate=args.attention_rate, attention_min_pass=args.attention_min_pass,
                    gold_system=args.gold_system, broken_system=args.attention_system,
                    repeat_rate=args.repeat_rate, seed=args.seed)
    study = plan_study(args.run, args.out, spec)
    kinds = {k: sum(t.kind == k for t in study.tasks) for k in ("regular", "attention", "repeat")}
    print(f"planned {args.out}: {len(study.items)} items, {len(study.raters)} raters, "
          f"{len(study.tasks)} pages "
          f"({kinds['regular']} regular, {kinds['attention']} attention checks, {kinds['repeat']} repeats); "
          f"study hash {study.digest[:12]}; rater tokens in {args.out / 'raters.json'}")
    return 0


def _power(args: argparse.Namespace) -> int:
    from trecs_eval.human.power import pairs_in, power_table, render_power
    from trecs_eval.human.study import load_study

    study = load_study(args.study)
    rows = power_table(study, args.effect, tie_rate=args.tie_rate, item_sd=args.item_sd,
                       rater_sd=args.rater_sd, n_sims=args.sims, seed=args.seed)
    sys.stdout.write(render_power(rows, args.effect, pairs_in(study)))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from trecs_eval.human.serve import StudyServer, rater_links
    from trecs_eval.human.study import load_study

    study = load_study(args.study)
    server = StudyServer(study, args.host, args.port)
    base = args.public_url or f"http://{args.host}:{server.server_address[1]}"
    for rater, link in sorted(rater_links(study, base).items()):
        print(f"{rater}\t{link}")
    print(f"serving {args.study} on {args.host}:{server.server_address[1]}; Ctrl-C stops", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped; every acknowledged judgment is in the database", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from trecs_eval.human.crowd import export_study
    from trecs_eval.human.study import load_study

    if (args.base_url is None) == (not args.embed_images):
        raise ConfigError("give either --base-url URL (where STUDY/images/ is uploaded) or --embed-images")
    study = load_study(args.study)
    out = args.out or args.study / "export" / args.format
    for path in export_study(study, out, args.base_url, args.format):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from trecs_eval.human.crowd import import_results
    from trecs_eval.human.study import load_study

    study = load_study(args.study)
    for path in args.results:
        new, old = import_results(study, path)
        print(f"{path}: {new} new answer(s), {old} already recorded")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from trecs_eval.human.analyze import analyze
    from trecs_eval.human.render import render_markdown
    from trecs_eval.human.study import load_study

    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    study = load_study(args.study)
    result = analyze(study, n_boot=args.bootstrap, seed=args.seed)
    text = render_markdown(result)
    write_text(args.study / "analysis.json", json.dumps(_no_nan(result), indent=1, allow_nan=False) + "\n")
    write_text(args.study / "analysis.md", text)
    sys.stdout.write(text)
    return 0


def _no_nan(value: object) -> object:
    """NaN (a statistic with too few judgments) becomes null: analysis.json stays strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
