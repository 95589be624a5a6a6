"""The closing lines of a finished sweep, from the notes the sweep writes."""

from __future__ import annotations

import pandas as pd

from commbench.analysis.summary import failed_line
from commbench.output.summary import skipped_line


def test_skipped_points_are_counted_by_reason() -> None:
    notes = pd.Series(
        [
            "skipped: needs 2.0 KiB per rank, over --max-bytes",
            "skipped: needs 4.0 KiB per rank, over --max-bytes",
            "skipped: out of memory on rank 1 for 4.0 GiB",
            "skipped: needs 8381.9 GiB per rank, over the 93.1 GiB each of the 2 rank(s)"
            " sharing host memory can have (186.3 GiB free)",
            "skipped: ProcessGroupGloo does not support reduce_scatter (torch 2.7.1)",
        ]
    )
    assert skipped_line(notes) == (
        "5 point(s) skipped (2 over --max-bytes, 1 out of memory, 1 over the memory a rank"
        " can have, 1 refused by the backend), not measured: see their note"
    )
    assert skipped_line(notes.iloc[:0]) is None


def test_failed_points_are_named_with_why() -> None:
    rows = pd.DataFrame(
        [
            {"collective": "all_gather", "variant": "list", "tp": 2, "dp": 1, "tokens": t,
             "hidden": 32, "vocab": 0, "dtype": "bfloat16", "check": check, "note": note}
            for t, check, note in [(1, "pass", ""), (3, "fail", "wrong output"), (5, "fail", ""),
                                   (8, "fail", "")]
        ]
    )  # fmt: skip
    assert failed_line(rows) == (
        "3 point(s) failed the exact-output check: all_gather/list tp=2 dp=1 T=3 H=32"
        " bfloat16 (wrong output); all_gather/list tp=2 dp=1 T=5 H=32 bfloat16; and 1 more"
    )
    assert failed_line(rows[rows["check"] == "pass"]) is None
