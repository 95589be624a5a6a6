"""all_reduce [T, H]: the reference that reduce_scatter + all_gather replaces."""

from __future__ import annotations

import torch
import torch.distributed as dist

from commbench.buffers import Arena
from commbench.ops.base import (
    DTYPES,
    Bound,
    Collective,
    GroupContext,
    add_pattern,
    pattern,
    sum_amplitude,
)
from commbench.point import Point


def tensor_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    amplitude = sum_amplitude(ctx.size)
    buffer = arena.empty((point.tokens, point.hidden), DTYPES[point.dtype])

    def values(src: int, out: torch.Tensor) -> torch.Tensor:
        return pattern(src, point.tokens, 0, point.hidden, amplitude, point, ctx.device, out)

    def expected(out: torch.Tensor) -> torch.Tensor:
        first, *others = ctx.ranks  # summed in the dtype itself: exact, see EXACT_LIMIT
        values(first, out)
        for src in others:
            add_pattern(out, src, 0, amplitude, point)
        return out

    return Bound(
        run=lambda: dist.all_reduce(buffer, group=ctx.group),
        inputs=(buffer,),
        output=buffer,
        fill=lambda: values(ctx.global_rank, buffer),
        expected=expected,
        padded_tokens=point.tokens,
        api="all_reduce",
    )


COLLECTIVE = Collective(
    name="all_reduce",
    variants={"tensor": tensor_variant},
    bus_factor=lambda n: 2 * (n - 1) / n,
)
