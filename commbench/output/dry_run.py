"""`sweep --dry-run`: the points a sweep would measure, their message size and memory per
rank, and about how long it would sample (commbench.sweep.dry_run plans it: nothing
launched or written)."""

from __future__ import annotations

from rich.table import Table

from commbench.catalogue import row_bytes
from commbench.config.settings import SweepConfig
from commbench.console import make_console
from commbench.point import Point, width_label
from commbench.units import format_size


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def show_dry_run(
    config: SweepConfig,
    plan: list[Point],
    world: tuple[int, str],
    seconds: tuple[float, float],
    memory: dict[Point, int],
) -> None:
    """Print the plan on `world` ranks (with where that number came from), each point's
    message size (the row's `bytes`) and the memory it needs per rank (`memory`: what
    the memory guard judges), and the sampling time it would take (`seconds`: at least,
    at most; commbench.sweep.dry_run.estimate)."""
    size, where = world
    console = make_console(highlight=False)
    table = Table(title=f"commbench sweep --dry-run: {len(plan)} points on {size} ranks")
    columns = ("collective", "variant", "dtype", "T", "width", "tp", "dp", "message", "memory")
    for name in columns:
        table.add_column(name, justify="left" if name in ("collective", "variant") else "right")
    for point in plan:
        table.add_row(
            point.collective,
            point.variant,
            point.dtype,
            str(point.tokens),
            width_label(point.key()),
            str(point.tp),
            str(point.dp),
            format_size(row_bytes(point)),
            format_size(memory[point]),
        )
    console.print(table)
    largest = max(plan, key=memory.__getitem__)
    low, high = seconds
    console.print(
        f"world: {size} ({where}); rounds: {config.rounds}; largest point:"
        f" {format_size(memory[largest])} of memory per rank ({largest.describe()}), as the"
        " sweep's memory guard counts it (buffers, the backend's copy, the check's expected"
        " values); message: the row's bytes."
    )
    console.print(
        f"estimated sampling time: {_duration(low)} to {_duration(high)}"
        f" ({len(plan)} points x {config.rounds} round(s), each {config.timing.min_samples} to"
        f" {config.timing.max_samples} samples of about {config.timing.min_sample_ms:g} ms,"
        f" at most {config.timing.max_seconds:g} s once it has {config.timing.min_samples};"
        " start-up, warm-up, calibration, checks and operations slower than a sample not"
        " counted).",
        soft_wrap=True,
    )
    console.print("Nothing was launched or written.")
