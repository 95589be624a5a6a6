"""Where a sweep's time goes, phase by phase: the harness's own cost, measured.

`with clock("check"):` adds the block's wall time to that phase. `samples` is the time
inside timed samples (the K operations between the two timestamps); every other phase is
what the harness adds per point: binding buffers, the agreement before a point, the
exact-output check, warm-up and calibration (and, in CUDA-graph mode, the capture), the
barrier before sampling, reducing each sample's times over the ranks, the stop rule, and
writing. The totals go to meta.json.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

# In the order a point goes through them; `steps` is the wall time of all points.
PHASES = (
    "bind",
    "agree",
    "check",
    "temp_mem",
    "warmup",
    "calibrate",
    "capture",
    "barrier",
    "samples",
    "gather",
    "stop_rule",
    "write",
    "progress",
)


class PhaseClock:
    """Seconds per phase, accumulated over a sweep (perf_counter: about 0.1 us a call)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def report(self) -> dict[str, float]:
        """Every phase (zero if unused), the steps' total, and what no phase accounts for."""
        phases = {phase: self.seconds.get(phase, 0.0) for phase in PHASES}
        steps = self.seconds.get("steps", 0.0)
        return {**phases, "other": steps - sum(phases.values()), "steps": steps}
