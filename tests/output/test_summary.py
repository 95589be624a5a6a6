"""The closing lines of a finished sweep, from the notes the sweep writes."""

from __future__ import annotations

import pandas as pd

from commbench.output.summary import skipped_line


def test_skipped_points_are_counted_by_reason() -> None:
    notes = pd.Series(
        [
            "skipped: needs 2048 bytes per rank, over --max-bytes",
            "skipped: needs 4096 bytes per rank, over --max-bytes",
            "skipped: out of memory on rank 1 for 4294967296 bytes",
            "skipped: needs 9e12 bytes per rank, over the 1e11 each of the 2 rank(s) sharing"
            " host memory can have (2e11 free)",
            "skipped: ProcessGroupGloo does not support reduce_scatter (torch 2.7.1)",
        ]
    )
    assert skipped_line(notes) == (
        "5 point(s) skipped (2 over --max-bytes, 1 out of memory, 1 over the memory a rank"
        " can have, 1 refused by the backend), not measured: see their note"
    )
    assert skipped_line(notes.iloc[:0]) is None
