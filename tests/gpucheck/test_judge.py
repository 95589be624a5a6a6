"""The judging of what only a GPU run's files hold (temporary bytes, replayed samples), on
frames of the same columns: a CPU run has no allocator figures and no graph replays."""

from __future__ import annotations

import pandas as pd

from commbench.gpucheck.judge import first_sample_outliers, flat_bytes, judge_temp_mem


def _row(collective, variant, tokens, tp, vocab=0, hidden=0, temp=0.0, dtype="float32"):
    return {
        "collective": collective, "variant": variant, "tokens": tokens, "tp": tp,
        "vocab": vocab, "hidden": hidden, "temp_mem_bytes": temp, "dtype": dtype,
    }  # fmt: skip


def test_temp_mem_is_the_flat_buffer_as_the_allocator_rounds_it() -> None:
    even = _row("all_gather", "list", 8, 2, hidden=24, temp=1024.0)  # 8*24*4 = 768 -> 1024
    assert flat_bytes(pd.Series(even)) == 1024
    assert flat_bytes(pd.Series(_row("all_gather", "list", 5, 2, hidden=24))) == 0  # uneven
    assert flat_bytes(pd.Series(_row("logits_gather", "list", 3, 2, vocab=24))) == 512
    assert flat_bytes(pd.Series(_row("reduce_scatter", "tensor", 8, 2, hidden=24))) == 0
    assert judge_temp_mem(pd.DataFrame([even, _row("all_gather", "tensor", 8, 2, hidden=24)]))[1]
    text, ok = judge_temp_mem(pd.DataFrame([{**even, "temp_mem_bytes": 0.0}]))
    assert (
        not ok
        and text == "0 of 1 rows equal; e.g. all_gather/list float32 T=8 tp=2 H=24: 0 != 1024"
    )
    routed = _row("all_to_all", "list", 8, 2, hidden=24, temp=4096.0)  # not predicted: left out
    assert judge_temp_mem(pd.DataFrame([even, routed])) == ("1 of 1 rows equal", True)
    assert not judge_temp_mem(pd.DataFrame([routed]))[1]  # nothing judged is no pass


def test_a_first_sample_above_the_rest_is_an_outlier() -> None:
    def samples(times, point="a"):
        return [
            {"point": point, "round": 0, "sample": i, "time_us": t} for i, t in enumerate(times)
        ]

    calm = samples([10.2, 10.0, 10.1, 9.9, 10.3, 10.0])
    skewed = samples([25.0, 10.0, 10.1, 9.9, 10.3, 10.0], point="b")
    assert first_sample_outliers(pd.DataFrame(calm)) == (0, 1)
    assert first_sample_outliers(pd.DataFrame(calm + skewed)) == (1, 2)
