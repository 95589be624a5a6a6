"""A check's outcome, the tables gpu-check prints, and the exit code it ends with.

A check ends in one of four statuses:
- PASS: it ran and what it checks held;
- FAIL: it ran and what it checks did not hold (or it did not finish in its time limit);
- N/A: it cannot be judged on this many GPUs (the reason is its `measured`), e.g. a
  timing verdict on two ranks that share one GPU and so time each other;
- NOT RUN: it could not run here (no library given, the whole run's time used up).
The exit code is 0 when nothing failed and something passed: a check that could not run
or cannot be judged here is not a failure, and says why in the table.
"""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL, NA, NOT_RUN = "PASS", "FAIL", "N/A", "NOT RUN"
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2  # nothing was verified: no GPU, no torch, or modules missing
NO_GPU = "gpu-check: no CUDA GPU visible to this python's torch: nothing was verified"
NO_TORCH = (
    "gpu-check: this python cannot import torch: run it with the python that has the CUDA"
    " torch (make gpu-check PYTHON=/path/to/python3): nothing was verified"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS, FAIL, N/A or NOT RUN
    measured: str  # what was found, or why it was not judged

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def judged(name: str, measured: str, held: bool) -> Check:
    """PASS or FAIL, as `held` says."""
    return Check(name, PASS if held else FAIL, measured)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Rows under a header, each column padded to its widest cell."""
    everything = [header, *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    everything.insert(1, tuple("-" * width for width in widths))
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in everything
    )


def exit_code(checks: list[Check]) -> int:
    """0 when no check failed and at least one passed; EXIT_FAILED otherwise."""
    if any(check.failed for check in checks) or not any(c.status == PASS for c in checks):
        return EXIT_FAILED
    return 0
