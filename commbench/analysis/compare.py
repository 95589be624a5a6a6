"""Several runs side by side (NCCL versions, PyTorch versions, NCCL_* settings ...).

The first run is the reference. Per row key: each run's median time and bus bandwidth,
and for every other run the ratio to the reference with an interval and a mark when
the difference is larger than the drift between runs can explain (the gate's rule,
with one run a side: the backend's measured prior). Geometric means of the ratios per
collective, per variant, per size bucket and overall, with the same kind of interval.
Reads files only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from commbench.analysis.gate.power import judge_shift
from commbench.analysis.gate.priors import Prior, PriorTable, prior_for_runs
from commbench.analysis.stats import Spread
from commbench.errors import UsageError
from commbench.rundir.identity import expand_config, identity
from commbench.rundir.reader import Run, measured, read_run
from commbench.rundir.schema import KEY_COLUMNS

if TYPE_CHECKING:
    from commbench.rundir.meta import RunMeta

# Below this a collective is latency-bound on every fabric worth gating, above it
# bandwidth-bound (nccl-tests' curves bend between 64 KiB and a few MiB).
BUCKET_BYTES = 1 << 20


@dataclass(frozen=True)
class Comparison:
    labels: list[str]
    rows: pd.DataFrame  # one per key: per run median/busbw, per other run ratio/low/high/sig
    aggregates: pd.DataFrame  # label, group, ratio, low, high, rows
    differs: dict[str, list[Any]]  # metadata field or setting -> value per run, where they differ
    same: dict[str, Any]  # metadata field -> the value all runs share
    spread: str  # where the intervals' between-run spread comes from; "" when none

    @property
    def spread_note(self) -> str:
        if self.spread:
            return f"99% intervals from the between-run spread ({self.spread}, one run a side)"
        return (
            "no intervals: no measured between-run spread for this backend, and one run a side"
            " cannot show one (`commbench ab` interleaves launches and gives one; or gate the runs)"
        )


def size_bucket(nbytes: int) -> str:
    return "small (< 1 MiB)" if nbytes < BUCKET_BYTES else "large (>= 1 MiB)"


def metadata_fields(meta: RunMeta) -> dict[str, Any]:
    """What a reader needs to know differs: identity, hosts, and every allowlisted variable."""
    fields = {k: v for k, v in identity(meta).items() if k != "nccl_env"}
    fields["nccl_path"] = meta.versions.nccl_path
    fields["hostnames"] = sorted(set(meta.hostnames))
    for name, value in meta.env.items():
        if not name.startswith(("MASTER_", "WORLD_SIZE", "LOCAL_WORLD_SIZE")):
            fields[f"env {name}"] = value
    return fields


def metadata_diff(runs: list[Run]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    fields = [metadata_fields(run.meta) for run in runs]
    names = sorted(set().union(*fields))
    values = {name: [f.get(name) for f in fields] for name in names}
    differs = {n: v for n, v in values.items() if any(x != v[0] for x in v)}
    same = {n: v[0] for n, v in values.items() if n not in differs}
    return expand_config(differs, [run.meta for run in runs]), same


def _judged(log_ratio: float, spread: Spread | None) -> tuple[float, float, bool]:
    """low, high and significance of a ratio of two single runs; NaN without a spread."""
    if spread is None or math.isnan(log_ratio):
        return math.nan, math.nan, False
    shift = judge_shift(log_ratio, spread, baselines=1, tolerance=0.0)
    return shift.low, shift.high, shift.significant


def compare_runs(
    runs: list[Run], labels: list[str], priors: PriorTable | None = None
) -> Comparison:
    """Each row of each run beside the first's; `priors`: where the between-run spread of
    one run a side comes from (default: the shipped priors)."""
    passed = [measured(run.results).set_index(KEY_COLUMNS) for run in runs]
    prior = prior_for_runs((run.meta for run in runs), priors)
    keys = passed[0].index
    for frame in passed[1:]:
        keys = keys.union(frame.index)
    records = []
    for key in keys:
        record: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=True))
        rows = [frame.loc[key] if key in frame.index else None for frame in passed]
        record["bytes"] = next(int(r["bytes"]) for r in rows if r is not None)
        for label, row in zip(labels, rows, strict=True):
            record[f"{label} us"] = row["time_us"] if row is not None else math.nan
            record[f"{label} busbw"] = row["busbw_gbps"] if row is not None else math.nan
        reference = rows[0]
        for label, row in zip(labels[1:], rows[1:], strict=True):
            ratio = math.nan
            if reference is not None and row is not None:
                ratio = row["time_us"] / reference["time_us"]
            low, high, significant = _judged(math.log(ratio), prior.row() if prior else None)
            record.update(
                {
                    f"{label} ratio": ratio,
                    f"{label} low": low,
                    f"{label} high": high,
                    f"{label} significant": significant,
                }
            )
        records.append(record)
    order = ["collective", "tp", "dp", "dtype", "hidden", "tokens", "variant"]
    table = pd.DataFrame.from_records(records).sort_values(order, ignore_index=True)
    table["bucket"] = table["bytes"].map(size_bucket)
    differs, same = metadata_diff(runs)
    aggregates = _aggregates(table, labels, prior)
    return Comparison(labels, table, aggregates, differs, same, prior.source if prior else "")


def _aggregates(table: pd.DataFrame, labels: list[str], prior: Prior | None) -> pd.DataFrame:
    groupings = [("collective", "collective"), ("variant", "variant"), ("bucket", "size")]
    records = []
    for label in labels[1:]:
        ratios = table[f"{label} ratio"]
        for column, kind in groupings:
            for value, part in ratios.groupby(table[column]):
                records.append(_aggregate(label, f"{kind} {value}", part.dropna(), prior))
        records.append(_aggregate(label, "overall", ratios.dropna(), prior))
    return pd.DataFrame.from_records(records)


def _aggregate(label: str, group: str, ratios: pd.Series, prior: Prior | None) -> dict[str, Any]:
    """The geometric mean of a group's ratios, its interval from the spread of that mean
    between runs (the rows of a run share its drift: not a bootstrap over rows)."""
    if ratios.empty:
        return {
            "label": label,
            "group": group,
            "rows": 0,
            "ratio": math.nan,
            "low": math.nan,
            "high": math.nan,
        }
    log_mean = float(np.log(ratios.to_numpy()).mean())
    low, high, _ = _judged(log_mean, prior.aggregate(len(ratios)) if prior else None)
    return {
        "label": label,
        "group": group,
        "rows": len(ratios),
        "ratio": math.exp(log_mean),
        "low": low,
        "high": high,
    }


def resolve_labels(runs: list[Run], labels: list[str] | None) -> list[str]:
    if labels is None:
        labels = [run.label for run in runs]
    if len(labels) != len(runs):
        raise UsageError(f"labels: {len(labels)} given for {len(runs)} runs")
    if len(set(labels)) != len(labels):
        raise UsageError(f"labels: must be distinct (got {labels}); use --labels a,b,...")
    return labels


def run_compare(
    paths: list[Path], labels: list[str] | None, priors: PriorTable | None = None
) -> Comparison:
    """`commbench compare`'s judgement of run directories (output/writers.py draws it)."""
    if len(paths) < 2:
        raise UsageError("runs: need at least two run directories to compare")
    runs = [read_run(path) for path in paths]
    return compare_runs(runs, resolve_labels(runs, labels), priors)
