"""all_gather [T/tp, H] -> [T, H]: the list form (SGLang before PR 8279) vs the tensor form."""

from __future__ import annotations

from collections.abc import Callable

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
    tensor_api,
)
from commbench.point import Point

GATHER_AMPLITUDE = 128
GLOO_UNEVEN_NOTE = (
    "gloo refuses an uneven list all_gather: ran ProcessGroupNCCL's fallback, "
    "one broadcast per rank"
)
RAW_BYTES_DEFECT = (
    "wrong output on NCCL for T > 1: its uneven all_gather (_broadcast_oop per rank) writes"
    " raw bytes at each output view's data_ptr, and these views are not contiguous;"
    " measured all the same, as that path's cost"
)


def _gather_parts(point: Point, ctx: GroupContext, sizes: list[int]):
    """The pattern each rank contributes, and the function that fills our own part."""
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]

    def part(group_rank: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return pattern(
            ctx.ranks[group_rank],
            sizes[group_rank],
            offsets[group_rank],
            point.hidden,
            GATHER_AMPLITUDE,
            point,
            ctx.device,
            out,
        )

    def expected(out: torch.Tensor) -> torch.Tensor:
        for group_rank, (offset, size) in enumerate(zip(offsets, sizes, strict=True)):
            part(group_rank, out[offset : offset + size])
        return out

    return part, expected


def list_gather(
    chunks: list[torch.Tensor], inp: torch.Tensor, ctx: GroupContext
) -> tuple[Callable[[], None], str, str, str]:
    """The list all_gather into `chunks` (views of one buffer): (run, api, note, defect).

    Uneven chunks: ProcessGroupNCCL::allgather serves them with one `_broadcast_oop(output,
    input)` per rank (ProcessGroupNCCL.cpp, allgather's `else` branch after
    `check_same_size`), and `_broadcast_oop` checks only that the element counts match
    before handing NCCL `output.data_ptr()` and `numel()`: raw bytes, whatever the view's
    strides. gloo refuses uneven chunks, so on gloo those same broadcasts run explicitly,
    over contiguous views of the very bytes NCCL would write, and the row says so. Where a
    chunk is not contiguous, that path scrambles the output: `defect` says how.
    """
    uneven = len({chunk.shape for chunk in chunks}) > 1
    defect = ""
    if uneven and not all(chunk.is_contiguous() for chunk in chunks):
        defect = RAW_BYTES_DEFECT
    if uneven and ctx.backend == "gloo":
        raw = [chunk.as_strided((chunk.numel(),), (1,)) for chunk in chunks]
        mine = inp.view(-1)

        def broadcasts() -> None:
            raw[ctx.rank].copy_(mine)
            for src, flat in zip(ctx.ranks, raw, strict=True):
                dist.broadcast(flat, src=src, group=ctx.group)

        return broadcasts, "broadcast", GLOO_UNEVEN_NOTE, defect

    def gather() -> None:
        dist.all_gather(chunks, inp, group=ctx.group)

    return gather, "all_gather", "", defect


def list_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    sizes = split_sizes(point.tokens, ctx.size)
    dtype = DTYPES[point.dtype]
    output = arena.empty((point.tokens, point.hidden), dtype)
    chunks = list(output.tensor_split(ctx.size))
    inp = arena.empty((sizes[ctx.rank], point.hidden), dtype)
    part, expected = _gather_parts(point, ctx, sizes)
    run, api, note, defect = list_gather(chunks, inp, ctx)
    return Bound(
        run=run,
        inputs=(inp,),
        output=output,
        fill=lambda: part(ctx.rank, inp),
        expected=expected,
        padded_tokens=point.tokens,
        api=api,
        note=note,
        defect=defect,
        hidden_bytes=flat_bytes(chunks),
    )


def tensor_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    tokens = padded(point.tokens, ctx.size)
    sizes = split_sizes(tokens, ctx.size)
    dtype = DTYPES[point.dtype]
    output = arena.empty((tokens, point.hidden), dtype)
    inp = arena.empty((sizes[ctx.rank], point.hidden), dtype)
    part, expected = _gather_parts(point, ctx, sizes)
    api, gather = tensor_api("all_gather_into_tensor", "all_gather_single")
    return Bound(
        run=lambda: gather(output, inp, group=ctx.group),
        inputs=(inp,),
        output=output,
        fill=lambda: part(ctx.rank, inp),
        expected=expected,
        padded_tokens=tokens,
        api=api,
    )


COLLECTIVE = Collective(
    name="all_gather",
    variants={"list": list_variant, "tensor": tensor_variant},
    bus_factor=gather_factor,
)
