"""Where an A/B change is: every contrast the experiment decided, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from commbench.analysis.ab.look import DECODE, PREFILL
from commbench.output.ab import summary_lines, where_lines


def _estimate(kind: str, name: str, decision: str) -> dict[str, Any]:
    return dict(arm="b", kind=kind, name=name, decision=decision, ratio=1.3, low=1.1, high=1.5)


def test_every_decided_contrast_is_named_and_no_absolute_ratio() -> None:
    estimates = [
        _estimate("overall", "overall", "slower"),  # what a job feels, said elsewhere
        _estimate("collective", "all_reduce", "slower"),
        _estimate("contrast", "all_gather", "undecided"),
        _estimate("size", PREFILL, "slower"),
        _estimate("collective size", "all_reduce", "slower"),
        _estimate("collective size", "all_gather", "equivalent"),
    ]
    assert where_lines(estimates, "b", "a") == [
        f"{PREFILL} rows against the {DECODE} ones: slower under b than under a, 1.3x [1.1, 1.5]",
        f"all_reduce {PREFILL} rows against its {DECODE} ones: slower under b than under a,"
        " 1.3x [1.1, 1.5]",
    ]


def test_the_summary_lines_up_every_aggregate_however_long_its_label(tmp_path: Path) -> None:
    arm = dict(env={}, nccl_lib=None, python=None)
    design = dict(arms=[{"name": "a", **arm}, {"name": "b", **arm}], seed=0, band=0.05, alpha=0.05)
    estimates = [
        _estimate("overall", "overall", "slower"),
        _estimate("contrast", "all_reduce", "undecided"),
        _estimate("collective size", "reduce_scatter", "slower"),  # the longest label
        _estimate("row", "all_reduce T=7", "undecided"),
    ]
    result = dict(pairs=10, look=True, alphas={}, missing_rows=0, estimates=estimates)
    state = dict(design=design, result=result, launches=[], status="regression", reason="")
    lines = summary_lines(tmp_path, state)
    shown = [line for line in lines if line.endswith(("slower", "undecided"))]
    assert len(shown) == 4  # the three aggregates, then the row, listed apart
    shown = [line for line in shown if not line.startswith("    ")]
    assert len({line.index("1.3x [1.1, 1.5]") for line in shown}) == 1
