"""reduce_scatter [T, H] -> [T/tp, H]: the list form vs the tensor form."""

from __future__ import annotations

import torch
import torch.distributed as dist

from commbench.ops.arena import Arena
from commbench.ops.base import (
    DTYPES,
    Bound,
    Collective,
    GroupContext,
    flat_bytes,
    gather_factor,
    padded,
    pattern,
    split_sizes,
    sum_amplitude,
    summed_pattern,
    tensor_api,
)
from commbench.point import Point


def _buffers(point: Point, ctx: GroupContext, arena: Arena, tokens: int) -> dict:
    """Bound's buffers and check functions for `tokens` rows in and our chunk out."""
    sizes = split_sizes(tokens, ctx.size)
    first_row = sum(sizes[: ctx.rank])
    dtype = DTYPES[point.dtype]
    amplitude = sum_amplitude(ctx.size)
    inp = arena.empty((tokens, point.hidden), dtype)
    output = arena.empty((sizes[ctx.rank], point.hidden), dtype)

    def fill() -> None:
        pattern(ctx.global_rank, tokens, 0, point.hidden, amplitude, point, ctx.device, inp)

    def expected(out: torch.Tensor) -> torch.Tensor:
        return summed_pattern(out, ctx.ranks, first_row, amplitude, point)

    return {"inputs": (inp,), "output": output, "fill": fill, "expected": expected}


def list_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    buffers = _buffers(point, ctx, arena, point.tokens)
    chunks = list(buffers["inputs"][0].tensor_split(ctx.size))
    output = buffers["output"]
    return Bound(
        run=lambda: dist.reduce_scatter(output, chunks, group=ctx.group),
        padded_tokens=point.tokens,
        api="reduce_scatter",
        hidden_bytes=flat_bytes(chunks),
        **buffers,
    )


def tensor_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    tokens = padded(point.tokens, ctx.size)
    buffers = _buffers(point, ctx, arena, tokens)
    inp, output = buffers["inputs"][0], buffers["output"]
    api, scatter = tensor_api("reduce_scatter_tensor", "reduce_scatter_single")
    return Bound(
        run=lambda: scatter(output, inp, group=ctx.group),
        padded_tokens=tokens,
        api=api,
        **buffers,
    )


COLLECTIVE = Collective(
    name="reduce_scatter",
    variants={"list": list_variant, "tensor": tensor_variant},
    bus_factor=gather_factor,
)
