"""`report --markdown`: one run as markdown that pastes into a GitHub issue.

What an NCCL regression report needs, in the order a maintainer reads it: the summary,
the environment that makes the numbers comparable (versions, NCCL built and loaded,
devices, topology, the NCCL environment, the command line), then every measured row.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.text import Text

from commbench.analysis.scenarios import round_trip, round_trip_lines, scenario_lines
from commbench.analysis.summary import (
    in_order,
    median_interval,
    problem_lines,
    side_by_side,
    verdict_lines,
)
from commbench.output.cells import number
from commbench.output.tables import markdown_table
from commbench.point import width_label
from commbench.rundir.reader import Run, measured
from commbench.units import format_size, format_time

if TYPE_CHECKING:
    from commbench.rundir.meta import RunMeta


def _plain(line: str) -> str:
    """A line of the terminal summary without its rich markup."""
    return Text.from_markup(line).plain


def _code(value: Any) -> str:
    """A value in a table cell, as code; `|` escaped, which would end the cell."""
    return "-" if value in (None, "", [], {}) else "`{}`".format(str(value).replace("|", "\\|"))


def environment_rows(meta: RunMeta) -> list[list[str]]:
    versions, host = meta.versions, meta.host
    devices = Counter(meta.device_names)
    rows = [
        ["commbench", _code(versions.commbench)],
        ["torch", _code(versions.torch)],
        ["python", _code(versions.python)],
        ["CUDA (torch built with)", _code(versions.cuda)],
        ["NCCL built (torch)", _code(versions.nccl_built)],
        ["NCCL loaded (runtime)", _code(versions.nccl_runtime)],
        ["NCCL loaded from", _code(versions.nccl_path)],
        ["backend", _code(meta.backend)],
        ["world size, nodes", f"{meta.world_size}, {meta.nodes}"],
        ["devices", ", ".join(f"{n} x `{name}`" for name, n in devices.items()) or "-"],
        ["group layout", _code(meta.layout)],
        ["platform", _code(host.platform)],
        ["config hash", _code(meta.config_hash)],
        ["started, finished", f"{meta.started}, {meta.finished or 'not finished'}"],
    ]
    if host.argv:
        rows.append(["command", _code("commbench " + " ".join(host.argv))])
    for name, value in meta.env.items():
        rows.append([f"env `{name}`", _code(value)])
    for name, values in meta.ranks_disagree.items():
        rows.append([f"ranks disagree on {name}", _code(values)])
    return rows


def _shape_cells(row: Any, nbytes: float) -> list[str]:
    """A row's split, dtype, width, tokens and bytes: the first cells of both tables."""
    shape = [str(row["tp"]), str(row["dp"]), row["dtype"], width_label(row), str(row["tokens"])]
    return [*shape, format_size(nbytes)]


SHAPE_HEADER = ["tp", "dp", "dtype", "width", "T", "bytes"]
COMPARISON_HEADER = ["list", "tensor", "list/tensor", "verdict", "tensor busbw GB/s"]
ROW_HEADER = ["median", "95% CI", "busbw GB/s", "cv"]


def _comparison_table(rows: pd.DataFrame) -> list[str]:
    cells = []
    for _, r in rows.iterrows():
        times = [format_time(r["time_us_list"]), format_time(r["time_us_tensor"])]
        verdict = [f"{r['speedup']:.2f}x", r["verdict"], number(r["busbw_gbps_tensor"], ".3g")]
        cells.append([*_shape_cells(r, r["bytes_tensor"]), *times, *verdict])
    return markdown_table([*SHAPE_HEADER, *COMPARISON_HEADER], cells)


def _row_table(rows: pd.DataFrame) -> list[str]:
    low, high = median_interval(rows)
    cells = []
    for (_, r), lo, hi in zip(rows.iterrows(), low, high, strict=True):
        figures = [format_time(r["time_us"]), f"{format_time(lo)} to {format_time(hi)}"]
        figures += [number(r["busbw_gbps"], ".3g"), f"{r['cv']:.2f}"]
        cells.append([r["collective"], r["variant"], *_shape_cells(r, r["bytes"]), *figures])
    return markdown_table(["collective", "variant", *SHAPE_HEADER, *ROW_HEADER], cells)


def run_markdown(run: Run) -> str:
    results = in_order(run.results, ["collective", "variant"])
    comparison = in_order(side_by_side(results), ["collective"])
    lines = [f"## commbench run `{run.label}`", ""]
    if stopped := run.meta.stopped:
        lines += [f"> **Stopped early** at {stopped.at}: {stopped.reason}", ""]
    lines += ["### Summary", ""]
    lines += [f"- {line}" for line in verdict_lines(comparison)]
    lines += [f"- {line}" for line in scenario_lines(comparison)]
    lines += [f"- {line}" for line in round_trip_lines(round_trip(results))]
    lines += [f"- {_plain(line)}" for line in problem_lines(results)]
    lines += ["", "### Environment", ""]
    lines += markdown_table(["setting", "value"], environment_rows(run.meta))
    if topology := run.meta.topology:
        lines += ["", "Topology (`nvidia-smi topo -m`):", "", "```", topology.rstrip(), "```"]
    lines += ["", "### List vs tensor (median time; verdict beyond the 95% CIs)", ""]
    for collective, rows in comparison.groupby("collective", sort=False):
        lines += [f"#### {collective}", "", *_comparison_table(rows), ""]
    lines += ["### Every measured row", ""]
    lines += _row_table(measured(results))
    lines += ["", f"Files: `{run.path}` (schema {run.schema_version})."]
    return "\n".join(lines) + "\n"
