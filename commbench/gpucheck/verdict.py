"""A check's outcome, the table gpu-check prints, and the exit code it ends with."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_FAILED = 1
EXIT_NO_GPU = 2
NO_GPU = "gpu-check: no CUDA GPU visible to this python's torch: nothing was verified"


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    measured: str
    passed: bool | None  # None: could not run here

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]


def render(checks: list[Check]) -> str:
    """The table: one row per check, columns padded to their widest cell."""
    rows = [("check", "expected", "measured", "verdict")]
    rows += [(c.name, c.expected, c.measured, c.verdict) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rows.insert(1, tuple("-" * width for width in widths))
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def exit_code(checks: list[Check]) -> int:
    """0 only when every check ran and passed."""
    return 0 if checks and all(c.passed for c in checks) else EXIT_FAILED
