"""all_reduce [T, H]: the reference that reduce_scatter + all_gather replaces."""

from __future__ import annotations

import torch.distributed as dist

from commbench.ops.arena import Arena
from commbench.ops.base import (
    DTYPES,
    Bound,
    Collective,
    GroupContext,
    pattern,
    sum_amplitude,
    summed_pattern,
)
from commbench.point import Point


def tensor_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    amplitude = sum_amplitude(ctx.size)
    buffer = arena.empty((point.tokens, point.hidden), DTYPES[point.dtype])

    return Bound(
        run=lambda: dist.all_reduce(buffer, group=ctx.group),
        inputs=(buffer,),
        output=buffer,
        fill=lambda: pattern(
            ctx.global_rank, point.tokens, 0, point.hidden, amplitude, point, ctx.device, buffer
        ),
        expected=lambda out: summed_pattern(out, ctx.ranks, 0, amplitude, point),
        padded_tokens=point.tokens,
        api="all_reduce",
    )


COLLECTIVE = Collective(
    name="all_reduce",
    variants={"tensor": tensor_variant},
    bus_factor=lambda n: 2 * (n - 1) / n,
)
