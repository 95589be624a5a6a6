"""`make gpu-check` on a machine without a GPU, and its judging of results, on CPU."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
from support.paths import REPO

from commbench.gpucheck.judge import (
    first_sample_outliers,
    flat_bytes,
    judge_exact,
    judge_temp_mem,
)
from commbench.gpucheck.verdict import EXIT_NO_GPU, NO_GPU, Check, exit_code, render


def test_without_a_gpu_it_says_so_in_one_line_and_fails() -> None:
    """Through the Makefile target, which must not set anything up (no venv, no `setup`)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "gpu-check", f"PYTHON={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert NO_GPU in done.stderr.splitlines()  # then make's own "Error 2" line
    assert "Traceback" not in done.stderr
    direct = subprocess.run(
        [sys.executable, "-m", "commbench.gpucheck"], cwd=REPO, capture_output=True, text=True
    )
    assert (direct.returncode, direct.stderr.strip(), direct.stdout) == (EXIT_NO_GPU, NO_GPU, "")


def test_the_makefile_target_does_not_depend_on_setup() -> None:
    plan = subprocess.run(
        ["make", "-n", "--no-print-directory", "gpu-check"], cwd=REPO, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    assert "venv" not in plan and "pip" not in plan and "commbench.gpucheck" in plan


def test_every_check_must_pass_and_a_check_not_run_is_not_a_pass() -> None:
    passed = Check("a", "x", "x", True)
    assert exit_code([passed, passed]) == 0
    assert exit_code([passed, Check("b", "x", "y", False)]) == 1
    assert exit_code([passed, Check("c", "x", "no library", None)]) == 1
    assert exit_code([]) == 1
    table = render([passed, Check("longer name", "x", "no library", None)]).splitlines()
    assert table[0].split() == ["check", "expected", "measured", "verdict"]
    assert table[2].split()[-1] == "PASS" and table[3].endswith("NOT RUN")
    assert table[2].index("x") == table[3].index("x") == table[0].index("expected")


def _row(
    collective, variant, tokens, tp, vocab=0, hidden=0, check="pass", temp=0.0, dtype="float32"
):
    return {
        "collective": collective, "variant": variant, "tokens": tokens, "tp": tp,
        "vocab": vocab, "hidden": hidden, "check": check, "temp_mem_bytes": temp, "dtype": dtype,
    }  # fmt: skip


def test_exact_rows_allow_only_the_rows_nccl_scrambles_to_fail() -> None:
    rows = [
        _row("all_gather", "list", 5, 2, hidden=24),
        _row("logits_gather", "list", 5, 2, vocab=25, check="fail"),  # raw bytes, T > 1
        _row("logits_gather", "list", 1, 2, vocab=25),  # T = 1: the bytes are in order
        _row("logits_gather", "list", 5, 2, vocab=24),  # even: the flat copy path
    ]
    assert judge_exact(pd.DataFrame(rows))[1]
    wrong = [*rows[:1], _row("logits_gather", "list", 5, 2, vocab=25, check="pass")]
    text, ok = judge_exact(pd.DataFrame(wrong))
    assert not ok and "unexpected" in text  # a prediction that did not come true fails too
    assert not judge_exact(pd.DataFrame([_row("all_gather", "tensor", 8, 2, check="fail")]))[1]


def test_temp_mem_is_the_flat_buffer_as_the_allocator_rounds_it() -> None:
    even = _row("all_gather", "list", 8, 2, hidden=24, temp=1024.0)  # 8*24*4 = 768 -> 1024
    assert flat_bytes(pd.Series(even)) == 1024
    assert flat_bytes(pd.Series(_row("all_gather", "list", 5, 2, hidden=24))) == 0  # uneven
    assert flat_bytes(pd.Series(_row("logits_gather", "list", 3, 2, vocab=24))) == 512
    assert flat_bytes(pd.Series(_row("reduce_scatter", "tensor", 8, 2, hidden=24))) == 0
    assert judge_temp_mem(pd.DataFrame([even, _row("all_gather", "tensor", 8, 2, hidden=24)]))[1]
    assert not judge_temp_mem(pd.DataFrame([{**even, "temp_mem_bytes": 0.0}]))[1]


def test_a_first_sample_above_the_rest_is_an_outlier() -> None:
    def samples(times, point="a"):
        return [
            {"point": point, "round": 0, "sample": i, "time_us": t} for i, t in enumerate(times)
        ]

    calm = samples([10.2, 10.0, 10.1, 9.9, 10.3, 10.0])
    skewed = samples([25.0, 10.0, 10.1, 9.9, 10.3, 10.0], point="b")
    assert first_sample_outliers(pd.DataFrame(calm)) == (0, 1)
    assert first_sample_outliers(pd.DataFrame(calm + skewed)) == (1, 2)
