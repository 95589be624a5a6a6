"""The summary's words come from the numbers: checked on results whose answer is known."""

from __future__ import annotations

import pandas as pd

from commbench.analysis.scenarios import recommendation
from commbench.analysis.summary import side_by_side, verdict_lines
from commbench.rundir.schema import RESULT_COLUMNS


def _row(collective: str, variant: str, tokens: int, time_us: float, spread: float = 1.0):
    row = dict.fromkeys(RESULT_COLUMNS, 0)
    row.update(
        collective=collective,
        variant=variant,
        backend="gloo",
        world_size=4,
        dp=2,
        tp=2,
        dtype="bfloat16",
        tokens=tokens,
        hidden=4096,
        padded_tokens=tokens + tokens % 2 if variant == "tensor" else tokens,
        bytes=tokens * 4096 * 2,
        time_us=time_us,
        time_us_p10=time_us - spread,
        time_us_p90=time_us + spread,
        ci_low_us=time_us - spread,
        ci_high_us=time_us + spread,
        check="pass",
        note="",
        cv=0.01,
    )
    return row


def _results(pairs: dict[int, tuple[float, float]], collective: str = "all_gather"):
    rows = []
    for tokens, (list_us, tensor_us) in pairs.items():
        rows += [
            _row(collective, "list", tokens, list_us),
            _row(collective, "tensor", tokens, tensor_us),
        ]
    return pd.DataFrame(rows)


def test_clear_wins_everywhere() -> None:
    comparison = side_by_side(_results({1: (20, 10), 128: (40, 20), 2048: (400, 100)}))
    assert list(comparison["verdict"]) == ["win", "win", "win"]
    assert list(comparison["speedup"]) == [2.0, 2.0, 4.0]
    (line,) = verdict_lines(comparison)
    assert "faster beyond noise in 3 of 3 points" in line
    assert "geometric-mean speedup 2.52x" in line
    assert "largest win 4.00x at tp=2 dp=2 T=2048 H=4096 bfloat16" in line
    assert "Never slower beyond noise" in line
    assert line.endswith("Recommendation: use the tensor form.")


def test_overlapping_intervals_are_ties_whatever_the_ratio() -> None:
    comparison = side_by_side(_results({1: (10.5, 10.0), 8: (10.0, 10.9)}))
    assert list(comparison["verdict"]) == ["tie", "tie"]
    assert verdict_lines(comparison)[0].endswith("no difference beyond noise; either form.")


def test_losses_are_named() -> None:
    comparison = side_by_side(_results({1: (10, 20), 128: (40, 20), 2048: (400, 100)}))
    assert list(comparison["verdict"]) == ["loss", "win", "win"]
    (line,) = verdict_lines(comparison)
    assert "Slower beyond noise in 1: tp=2 dp=2 T=1 H=4096 bfloat16 (0.50x)" in line
    assert "tensor form is faster overall; choose per shape" in line


def test_failed_rows_are_left_out_of_the_comparison() -> None:
    results = _results({1: (20, 10), 8: (20, 10)})
    results.loc[3, "check"] = "fail"  # the tensor row of T=8
    assert list(side_by_side(results)["tokens"]) == [1]


def test_recommendation_table() -> None:
    assert recommendation(3, 0, 1.5) == "use the tensor form"
    assert recommendation(0, 3, 0.7).startswith("keep the list form")
    assert recommendation(0, 1, 0.98).startswith("no gain from the tensor form")
    assert recommendation(0, 0, 1.0).startswith("no difference beyond noise")
