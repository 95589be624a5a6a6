"""Bencher Metric Format (BMF) JSON, for `bencher run --adapter json`.

An object keyed by benchmark name; each benchmark an object of measures; each measure
`{"value", "lower_value", "upper_value"}` (the bounds optional). Checked against
https://bencher.dev/bmf.json (JSON Schema draft-07) and the BMF reference page. `latency`
is Bencher's built-in measure, in nanoseconds: the median and its 95% confidence
interval. `bus-bandwidth-gbps` is busbw in GB/s over the same interval (busbw is bytes
over time, so the interval's ends swap). Bounds are left out where the run had too few
samples for an interval, rather than invented.
"""

from __future__ import annotations

import json
import math

from commbench.export import Exporter, Measured, benchmark_name

LATENCY = "latency"
BANDWIDTH = "bus-bandwidth-gbps"


def _metric(value: float, low: float, high: float) -> dict[str, float]:
    metric = {"value": value}
    if not (math.isnan(low) or math.isnan(high)):
        metric.update(lower_value=low, upper_value=high)
    return metric


def bencher_json(measured: Measured) -> str:
    report = {}
    for _, row in measured:
        median, low, high = row["time_us"], row["ci_low_us"], row["ci_high_us"]
        busbw = row["busbw_gbps"]
        report[benchmark_name(row)] = {
            LATENCY: _metric(median * 1e3, low * 1e3, high * 1e3),
            BANDWIDTH: _metric(busbw, busbw * median / high, busbw * median / low),
        }
    return json.dumps(report, indent=2) + "\n"


EXPORTER = Exporter(
    "bencher", "Bencher Metric Format JSON (bencher run --adapter json)", bencher_json
)
