"""Where an A/B change is: every contrast the experiment decided, and nothing else."""

from __future__ import annotations

from typing import Any

from commbench.analysis.ab.look import DECODE, PREFILL
from commbench.output.ab import where_lines


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
