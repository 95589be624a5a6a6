"""The serving view derives its words from the numbers: fixtures whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from commbench.analysis.scenarios import (
    crossover,
    padding_cost,
    padding_lines,
    round_trip,
    round_trip_lines,
    scenario_lines,
)


def _comparison(speedups: dict[int, float], tp: int = 4, verdict: str = "win") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"collective": "all_gather", "tp": tp, "dp": 8 // tp, "dtype": "bfloat16",
             "hidden": 7168, "vocab": 0, "experts": 0, "topk": 0, "skew": 0.0, "tokens": t,
             "padded_tokens_tensor": -(-t // tp) * tp, "padded_vocab_tensor": 0, "speedup": s,
             "verdict": verdict}
            for t, s in speedups.items()
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("faster", "expected"),
    [
        ({1: True, 64: True, 2048: True}, "tensor faster at every token count"),
        ({1: False, 64: False}, "list faster at every token count"),
        ({1: False, 64: False, 2048: True},
         "crossover between T=64 and T=2048 (tensor faster above)"),
        ({1: True, 64: False}, "crossover between T=1 and T=64 (list faster above)"),
        ({1: True, 64: False, 2048: True}, "no single crossover (the sign changes 2 times)"),
        ({1: None, 64: None}, "no difference beyond noise at any T"),
        # token counts inside the noise carry no claim: the change is between decided ones
        ({1: True, 8: None, 64: False}, "crossover between T=1 and T=64 (list faster above)"),
        ({1: None, 64: True},
         "tensor faster at every token count where the forms differ beyond noise (1 of 2)"),
    ],
)  # fmt: skip
def test_crossover(faster: dict[int, bool | None], expected: str) -> None:
    assert crossover(pd.Series(faster, dtype=object)) == expected


def test_decode_prefill_and_padding() -> None:
    comparison = _comparison({1: 2.0, 8: 0.5, 7: 2.0, 4096: 3.0})
    comparison["verdict"] = ["win", "loss", "win", "win"]
    (line,) = scenario_lines(comparison)
    assert line.startswith("all_gather tp=4 dp=2 bfloat16: decode (T<=512) 1.26x, prefill 3.00x")
    assert "not a multiple of 4" in line and ": 2.00x (2 points)" in line  # T=1 and T=7
    assert "no single crossover" in line
    assert "choose per shape" in line


def test_unstable_shapes_carry_no_claim() -> None:
    comparison = _comparison({1: 2.0, 64: 0.5}, verdict="unstable")
    (line,) = scenario_lines(comparison)
    assert "no difference beyond noise at any T" in line
    assert line.endswith(
        "No recommendation: 2 of 2 points are unstable (cv >= 0.10), none"
        " faster beyond noise; measure on a quieter machine."
    )


def test_no_crossover_is_claimed_inside_the_noise() -> None:
    (line,) = scenario_lines(_comparison({1: 1.02, 64: 0.98, 2048: 1.01}, verdict="tie"))
    assert "no difference beyond noise at any T" in line


def test_round_trip_against_all_reduce() -> None:
    def row(collective: str, variant: str, time_us: float) -> dict:
        return {"collective": collective, "variant": variant, "tp": 2, "dp": 1,
                "dtype": "bfloat16", "hidden": 4096, "tokens": 128, "time_us": time_us,
                "check": "pass"}  # fmt: skip

    results = pd.DataFrame(
        [row("all_reduce", "tensor", 100.0), row("reduce_scatter", "list", 80.0),
         row("all_gather", "list", 60.0), row("reduce_scatter", "tensor", 40.0),
         row("all_gather", "tensor", 30.0)]
    )  # fmt: skip
    table = round_trip(results)
    assert table.loc[0, "rs+ag list us"] == 140.0 and table.loc[0, "rs+ag tensor us"] == 70.0
    assert table.loc[0, "rs+ag tensor / all_reduce"] == pytest.approx(0.7)
    (line,) = round_trip_lines(table)
    assert "list form 1.40x and tensor form 0.70x the time of one all_reduce" in line
    assert round_trip(results[results["collective"] != "all_reduce"]).empty


def test_the_logits_are_uneven_along_the_vocabulary() -> None:
    comparison = _comparison({1: 0.5, 8: 0.5}).assign(
        collective="logits_gather",
        vocab=128257,
        padded_vocab_tensor=128260,
        padded_tokens_tensor=lambda f: f["tokens"],
    )
    (line,) = scenario_lines(comparison)
    assert "where V is not a multiple of 4" in line and "0.50x (2 points)" in line


def test_routed_rows_never_claim_token_padding() -> None:
    """all_to_all moves routed rows, not [T/tp] slices: T=7 on tp 4 pads nothing."""
    comparison = _comparison({7: 1.5, 4096: 1.5}).assign(
        collective="all_to_all",
        experts=8,
        topk=2,
        skew=1.2,
        padded_tokens_tensor=lambda f: f["tokens"],
    )
    (line,) = scenario_lines(comparison)
    assert line.startswith("all_to_all tp=4 dp=2 bfloat16 E=8 k=2 s=1.2: decode")
    assert "multiple" not in line


def test_padding_to_capacity_per_skew_and_phase() -> None:
    """padded time / tensor time per skew: cheaper in decode, dearer in prefill where the
    padded bytes dominate, and the crossover between."""

    def row(variant: str, tokens: int, skew: float, time_us: float, padded: int) -> dict:
        return {"collective": "all_to_all", "variant": variant, "tp": 4, "dp": 1,
                "dtype": "bfloat16", "hidden": 256, "experts": 8, "topk": 2, "skew": skew,
                "tokens": tokens, "time_us": time_us, "check": "pass", "routed_bytes": 1000,
                "padded_bytes": padded}  # fmt: skip

    results = pd.DataFrame(
        [row("tensor", 8, 0.0, 100.0, 1200), row("padded", 8, 0.0, 80.0, 1200),
         row("tensor", 4096, 0.0, 100.0, 1100), row("padded", 4096, 0.0, 90.0, 1100),
         row("tensor", 8, 1.2, 100.0, 2000), row("padded", 8, 1.2, 90.0, 2000),
         row("tensor", 4096, 1.2, 100.0, 3000), row("padded", 4096, 1.2, 200.0, 3000),
         row("list", 8, 1.2, 50.0, 2000)]
    )  # fmt: skip
    table = padding_cost(results)
    assert len(table) == 4 and table["cost"].max() == 2.0
    (line,) = padding_lines(table)
    assert line.startswith("padding to capacity, all_to_all tp=4 dp=1 bfloat16 E=8 k=2")
    assert "s=0: 1.15x the bytes; time 0.80x in decode, 0.90x in prefill;" in line
    assert "padded faster at every token count; s=1.2: 2.45x the bytes" in line
    assert "crossover between T=8 and T=4096 (tensor faster above)" in line
    assert padding_lines(padding_cost(results[results["variant"] != "padded"])) == []
