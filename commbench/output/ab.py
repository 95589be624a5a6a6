"""What an A/B experiment says: progress while it runs, the terminal summary, the markdown
report (for an NCCL bug report) and the plot, all from experiment.json's state."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from commbench.analysis.ab import FAMILY, OVERALL, Look
from commbench.analysis.ab.look import DECODE, PREFILL

SHOWN_ROWS = 5
VERDICTS = {
    "decided": "every interval decided; no arm is slower than the reference beyond the band",
    "regression": "an arm is slower than the reference beyond the band (a regression)",
    "undecided": "undecided: the budget ended before every interval decided (--resume with a"
    " larger --max-pairs extends it)",
    "not comparable": "not comparable: a launch differs in more than its arm",
    "launch failed": "a launch failed twice; what was measured is kept, --resume retries",
    "refused": "a launch refused its input",
    "interrupted": "interrupted; --resume continues",
}
# how each kind of aggregate reads, in the order the summary gives them
KINDS = {
    "overall": "overall",
    "collective": "{name}",
    "contrast": "{name} against the rest",
    "size": f"{{name}} rows against the {DECODE} ones",
    "collective size": f"{{name}} {PREFILL} rows against its {DECODE} ones",
}


def label(e: dict[str, Any]) -> str:
    return KINDS.get(e["kind"], "{name}").format(name=e["name"])


def interval(e: dict[str, Any]) -> str:
    if e["low"] is None:
        return f"{e['ratio']:.4g}x [no interval yet]"
    return f"{e['ratio']:.4g}x [{e['low']:.4g}, {e['high']:.4g}]"


def decision(e: dict[str, Any]) -> str:
    """`slower`, `slower (at 4 pairs)` for a decision an earlier look made, ..."""
    said = e["decision"]
    if said != "undecided" and e.get("pairs") and e.get("by"):
        said += f" (at {e['pairs']} pairs{', sequence' if e['by'] == 'sequence' else ''})"
    return said


def aggregates(estimates: list[dict[str, Any]], arm: str) -> list[dict[str, Any]]:
    """The arm's deciding aggregates: absolute ones first (overall, then collectives),
    then the contrasts (collectives, size classes, a collective's sizes)."""
    order = list(KINDS)
    mine = [e for e in estimates if e["arm"] == arm and e["kind"] != "row"]
    return sorted(mine, key=lambda e: (order.index(e["kind"]), e["name"] != OVERALL, e["name"]))


def print_progress(state: dict[str, Any], last: Look, left: float | None) -> None:
    """One line per launch: pairs done, each aggregate's ratio and interval, time left."""
    design = state["design"]
    ok = [x["seconds"] for x in state["launches"] if x["status"] == "ok" and x["seconds"]]
    blocks_left = design["max_pairs"] - last.pairs
    most = blocks_left * len(design["arms"]) * (sum(ok) / len(ok)) if ok else math.nan
    if left is not None:
        most = min(most, left) if ok else left
    time_left = "" if math.isnan(most) else f"; at most {most / 60:.1f} min left"
    said = [
        f"{e['arm']} {label(e)} {interval(e)} {e['decision']}"
        for arm in [a["name"] for a in design["arms"][1:]]
        for e in aggregates([e.record() for e in last.estimates], arm)
    ]
    done = len(state["launches"])
    if said and not last.made:
        time_left += f"; next look at {last.next_look} pairs"
    print(
        f"ab: {done} launch(es), {last.pairs}/{design['max_pairs']} pairs{time_left}"
        + (": " + "; ".join(said) if said else ""),
        flush=True,
    )


def _level(result: dict[str, Any], alpha: float) -> str:
    """How the intervals were built, in words."""
    alphas = result.get("alphas", {})
    said = (
        f"one-sided bounds at this look's share of alpha {alpha:g} (absolute"
        f" {alphas.get('absolute', 0):.2g}, contrasts {alphas.get('contrast', 0):.2g} each),"
        " or the confidence sequence's; rows: confidence sequences over every row"
    )
    return said if result["look"] else said + "; shown between looks: only a look decides"


def _metadata(root: Path, state: dict[str, Any]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """What differs between one measured launch of each arm, as `compare` says it, and
    what they share."""
    from commbench.analysis.compare import metadata_diff
    from commbench.rundir.reader import read_run

    runs = []
    for arm in state["design"]["arms"]:
        launch = next(
            (x for x in state["launches"] if x["arm"] == arm["name"] and x["status"] == "ok"), None
        )
        if launch is None:
            return {}, {}
        runs.append(read_run(root / launch["dir"]))
    return metadata_diff(runs)


def _arm_text(arm: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in arm["env"].items()]
    parts += [
        f"{k}={arm[f]}" for k, f in (("nccl-lib", "nccl_lib"), ("python", "python")) if arm[f]
    ]
    return ", ".join(parts) or "nothing changed"


def where_lines(estimates: list[dict[str, Any]], arm: str, reference: str) -> list[str]:
    """Where a change is: each contrast decided slower or faster (a collective, a size
    class against the rest of its launch), and each row whose adjusted interval decided."""
    lines = []
    for e in aggregates(estimates, arm):
        if FAMILY[e["kind"]] == "contrast" and e["decision"] in ("slower", "faster"):
            lines.append(
                f"{label(e)}: {e['decision']} under {arm} than under {reference}, {interval(e)}"
            )
    rows = [e for e in estimates if e["arm"] == arm and e["kind"] == "row"]
    for e in rows:
        if e["decision"] in ("slower", "faster"):
            lines.append(f"row {e['name']}: {e['decision']}, {interval(e)} (adjusted over rows)")
    return lines


def summary_lines(root: Path, state: dict[str, Any]) -> list[str]:
    design, result = state["design"], state["result"] or {}
    names = [a["name"] for a in design["arms"]]
    warm = sum(1 for x in state["launches"] if x["block"] == -1 and x["status"] == "ok")
    lines = [
        f"A/B experiment {root}: {result.get('pairs', 0)} pair(s) per arm, seed {design['seed']};"
        + (" the first launch only warmed the machine and is not counted" if warm else ""),
        f"Reference: {names[0]} ({_arm_text(design['arms'][0])})",
    ]
    lines += [f"Arm {a['name']}: {_arm_text(a)}" for a in design["arms"][1:]]
    for field, values in _metadata(root, state)[0].items():
        lines.append(
            f"  differs: {field}: "
            + ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
        )
    band = design["band"]
    if result.get("estimates"):
        lines.append(
            f"Intervals: {_level(result, design['alpha'])};"
            f" equivalent within [{1 / (1 + band):.3f}, {1 + band:.3f}]"
        )
        if result["missing_rows"]:
            lines.append(f"  {result['missing_rows']} row(s) missing from some launch: left out")
    for arm in names[1:]:
        estimates = [e for e in result.get("estimates", []) if e["arm"] == arm]
        if not estimates:
            continue
        lines.append(f"{arm} / {names[0]}:")
        shown = aggregates(estimates, arm)
        width = max((len(label(e)) for e in shown), default=0)
        lines += [f"  {label(e):<{width}} {interval(e):<32} {decision(e)}" for e in shown]
        where = where_lines(estimates, arm, names[0])
        nowhere = "no collective, size class or row differs from the rest beyond the band"
        lines.append("  where: " + ("; ".join(where) if where else nowhere))
        rows = sorted(
            (e for e in estimates if e["kind"] == "row"), key=lambda e: -abs(math.log(e["ratio"]))
        )
        lines.append("  rows that differ most (intervals adjusted over every row):")
        lines += [f"    {e['name']}: {interval(e)} {e['decision']}" for e in rows[:SHOWN_ROWS]]
    failed = [x for x in state["launches"] if x["status"] not in ("ok",)]
    lines += [f"Launch {x['dir']}: {x['status']}: {x['reason']}" for x in failed]
    lines.append(
        f"Verdict: {VERDICTS[state['status']]}"
        + (f" ({state['reason']})" if state["reason"] else "")
    )
    return lines


def markdown_text(root: Path, state: dict[str, Any]) -> str:
    """The experiment for a bug report: what ran, what differs, the ratios and verdict."""
    design, result = state["design"], state["result"] or {}
    names = [a["name"] for a in design["arms"]]
    out = [f"# A/B experiment: {' vs '.join(names)}", ""]
    out += [f"- `{a['name']}`: {_arm_text(a)}" for a in design["arms"]]
    out += ["", f"Command: `{' '.join(design['argv'])}`", ""]
    out += [
        f"Interleaved launches (ABBA blocks, seed {design['seed']}), {result.get('pairs', 0)}"
        f" pair(s) per arm; intervals: {_level(result, design['alpha']) if result else 'none yet'};"
        f" band +-{100 * design['band']:g}%.",
        "",
        "| arm | aggregate | ratio | interval | decision |",
        "|---|---|---|---|---|",
    ]
    for arm in names[1:]:
        for e in aggregates(result.get("estimates", []), arm):
            span = "-" if e["low"] is None else f"[{e['low']:.4g}, {e['high']:.4g}]"
            out.append(f"| {arm} | {label(e)} | {e['ratio']:.4g}x | {span} | {decision(e)} |")
        where = where_lines(result.get("estimates", []), arm, names[0])
        if where:
            out += ["", f"Where `{arm}` differs: " + "; ".join(where) + "."]
    differs, same = _metadata(root, state)
    if same:
        out += ["", "Shared by every launch: " + "; ".join(f"{k} {v}" for k, v in same.items())]
    if differs:
        out += [
            "",
            "| launches differ in | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        out += [
            f"| {f} | " + " | ".join(str(v) for v in vals) + " |" for f, vals in differs.items()
        ]
    out += ["", f"Verdict: {VERDICTS[state['status']]}.", ""]
    return "\n".join(out)
