"""github-action-benchmark's `customSmallerIsBetter` input: a JSON list of entries.

Each entry: `name`, `unit`, `value` (required), `range` and `extra` (optional strings),
as github-action-benchmark v1.22.0 parses them (src/extract.ts, the zod schema
`BenchmarkResult`; its README's "customSmallerIsBetter"). `value` is the median in us; `range`
is `± h`, h the larger half of the 95% confidence interval (the form the action's
extractRangeInfo reads), left out without an interval; `extra` holds the interval, busbw
and what makes runs comparable (versions, backend, devices, config hash), shown in the
chart's tooltip.
"""

from __future__ import annotations

import json
import math
from typing import Any

from commbench.export import Exporter, Measured, benchmark_name
from commbench.rundir.identity import identity

UNIT = "us"  # one of the time units the action converts between (s, ms, us, ns)


def _extra(run: Any, row: Any) -> str:
    lines = []
    if not math.isnan(row["ci_low_us"]):
        lines.append(f"95% CI: {row['ci_low_us']:.1f} to {row['ci_high_us']:.1f} us")
    lines.append(f"busbw: {row['busbw_gbps']:.4g} GB/s")
    lines.append(f"samples: {row['samples']}, rounds: {row['rounds']}, cv: {row['cv']:.3f}")
    lines += [f"{name}: {value}" for name, value in identity(run.meta).items() if value]
    lines.append(f"run: {run.label}")
    return "\n".join(lines)


def github_json(measured: Measured) -> str:
    entries = []
    for run, row in measured:
        entry = {"name": benchmark_name(row), "unit": UNIT, "value": float(row["time_us"])}
        if not math.isnan(row["ci_low_us"]):
            half = max(row["time_us"] - row["ci_low_us"], row["ci_high_us"] - row["time_us"])
            entry["range"] = f"± {half:.3g}"
        entry["extra"] = _extra(run, row)
        entries.append(entry)
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


EXPORTER = Exporter("github", "github-action-benchmark's customSmallerIsBetter list", github_json)
