"""Render a regression-gate Comparison as Markdown, JSON or JUnit XML (one test case per metric).

System and metric names and run paths are untrusted: Markdown gets them through
:func:`reports.escape.md_text` (a ``|`` cannot add a column, a newline cannot add a row), JUnit
without the characters XML 1.0 forbids (:func:`reports.escape.clean_xml_tree`)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

from reports.compare import NOT_COMPARED, WORSE, Comparison, MetricComparison
from reports.escape import clean_xml_tree, md_text
from reports.tables import display_name

COMPARE_FORMATS = ("md", "json", "junit")


def _num(value: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"


def _row_text(r: MetricComparison) -> str:
    if r.verdict == NOT_COMPARED:
        return f"{'UNTESTABLE' if r.untestable else 'not compared'}: {r.reason}"
    dropped = f"; {r.dropped}" if r.dropped else ""
    return (f"delta {_num(r.delta)} (95% CI [{_num(r.ci_low)}, {_num(r.ci_high)}], p={_num(r.p_value, 3)}, "
            f"adjusted p={_num(r.p_adjusted, 3)}), A={_num(r.value_a)} B={_num(r.value_b)}, n={r.n} "
            f"({r.n_clusters} images{dropped}), {r.estimator}, {r.method}: {r.verdict}")


def _gate(r: MetricComparison, allow_untestable: bool) -> str:
    if r.regression:
        return "**FAIL**"
    if r.untestable:
        return "untestable (allowed)" if allow_untestable else "**FAIL: untestable**"
    return "skipped" if r.verdict == NOT_COMPARED else "pass"


def _status(c: Comparison) -> str:
    if not c.exit_code:
        allowed = f" ({len(c.untestable)} untestable rows allowed)" if c.untestable else ""
        return f"PASS: no regression beyond thresholds{allowed}"
    causes = (["regression"] if c.regressions else []) + (
        [f"{len(c.untestable)} gated rows untestable"] if c.untestable and not c.allow_untestable else [])
    return f"FAIL: {', '.join(causes)}"


def to_markdown(c: Comparison) -> str:
    status = _status(c)
    lines = [f"**Regression gate: {status}**", "", f"A = {md_text(c.run_a)}  ", f"B = {md_text(c.run_b)}  ",
             f"delta = B − A of each metric's declared estimator over the items scored in both runs; "
             f"FID/KID: paired delta-method z-test, IS: paired t over splits, per-item means: paired "
             f"z-test, pooled ratios: cluster-level delta-method z-test, variances clustered by image; "
             f"{100 * (1 - c.alpha):g} % CI (unadjusted); significant = {c.correction}-adjusted "
             f"p < {c.alpha:g} (family-wise error over all rows); KID = unbiased MMD² over all pairs", ""]
    lines += [f"> warning: {md_text(w)}" for w in c.warnings] + ([""] if c.warnings else [])
    lines.append("| System | Metric | A | B | Δ (B−A) | 95 % CI | p | p adj. | n (images) | Verdict "
                 "| Threshold | Gate |")
    lines.append("|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|")
    for r in c.rows:
        arrow = "↑" if r.higher_is_better else "↓"
        gate = _gate(r, c.allow_untestable)
        verdict = r.verdict if r.verdict != NOT_COMPARED else f"not compared ({r.reason})"
        if r.dropped:
            verdict += f" ({r.dropped})"
        if r.verdict == WORSE:
            verdict = f"**{verdict}**"
        lines.append(f"| {md_text(r.system)} | {md_text(display_name(r.metric))} {arrow} | {_num(r.value_a)} "
                     f"| {_num(r.value_b)} | {_num(r.delta)} | [{_num(r.ci_low)}, {_num(r.ci_high)}] "
                     f"| {_num(r.p_value, 3)} | {_num(r.p_adjusted, 3)} | {r.n} ({r.n_clusters}) "
                     f"| {md_text(verdict)} | {_num(r.threshold)} | {gate} |")
    return "\n".join(lines) + "\n"


def to_json(c: Comparison) -> str:
    return json.dumps(c.to_dict(), indent=2, allow_nan=False) + "\n"


def to_junit(c: Comparison) -> str:
    """JUnit XML: a testsuite of one testcase per (system, metric); regressions are failures."""
    blind = [] if c.allow_untestable else c.untestable
    suite = ET.Element("testsuite", name="trecs-eval compare", tests=str(len(c.rows)),
                       failures=str(len(c.regressions) + len(blind)),
                       skipped=str(sum(r.verdict == NOT_COMPARED for r in c.rows) - len(blind)))
    props = ET.SubElement(suite, "properties")
    for key, value in (("run_a", c.run_a), ("run_b", c.run_b), ("seed", c.seed),
                       ("n_resamples", c.n_resamples), ("alpha", c.alpha), ("correction", c.correction)):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in c.rows:
        case = ET.SubElement(suite, "testcase", classname=f"trecs_eval.{r.system}", name=r.metric)
        if r.regression:
            failure = ET.SubElement(case, "failure", type="regression",
                                    message=f"{r.metric} worse beyond threshold {r.threshold:g}")
            failure.text = _row_text(r)
        elif r in blind:
            ET.SubElement(case, "failure", type="untestable", message=r.reason).text = _row_text(r)
        elif r.verdict == NOT_COMPARED:
            ET.SubElement(case, "skipped", message=r.reason)
        else:
            ET.SubElement(case, "system-out").text = _row_text(r)
    if c.warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(c.warnings)
    clean_xml_tree(suite)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def render(c: Comparison, fmt: str) -> str:
    return {"md": to_markdown, "json": to_json, "junit": to_junit}[fmt](c)
