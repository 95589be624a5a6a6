"""all_gather [T/tp, H] -> [T, H]: the list form (SGLang before PR 8279) vs the tensor form."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

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
RAW_BYTES = (
    "its uneven all_gather (_broadcast_oop per rank) writes raw bytes at each output view's"
    " data_ptr, and these views are not contiguous"
)
RAW_BYTES_DEFECT = f"wrong output on NCCL for T > 1: {RAW_BYTES}; measured all the same"
RAW_BYTES_PREDICTED = (
    f"on NCCL this path is expected to write wrong output ({RAW_BYTES}): gpu-check verifies it"
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


class ListGather(NamedTuple):
    run: Callable[[], None]
    api: str  # the call measured
    note: str
    defect: str  # the known defect the check will show (Bound.defect)
    staged: tuple[torch.Tensor, ...] = ()  # buffers of its own (Bound.scratch)


def list_gather(chunks: list[torch.Tensor], inp: torch.Tensor, ctx: GroupContext) -> ListGather:
    """The list all_gather into `chunks` (views of one buffer).

    Uneven chunks: ProcessGroupNCCL::allgather serves them with one `_broadcast_oop(output,
    input)` per rank (ProcessGroupNCCL.cpp, allgather's `else` branch after
    `check_same_size`), and `_broadcast_oop` checks only that the element counts match
    before handing NCCL `output.data_ptr()` and `numel()`: raw bytes, whatever the view's
    strides. Where a chunk is not contiguous that scrambles the output on NCCL: the row
    fails its check there (`defect`), measured all the same. gloo refuses uneven chunks,
    so on gloo the same broadcasts run explicitly, each into a contiguous buffer copied
    into its view: what gloo did is checked as it is, and the row carries NCCL's expected
    defect as a note, a prediction gpu-check verifies on a GPU.
    """
    uneven = len({chunk.shape for chunk in chunks}) > 1
    scrambles = uneven and not all(chunk.is_contiguous() for chunk in chunks)
    if uneven and ctx.backend == "gloo":
        staged = [
            chunk
            if chunk.is_contiguous()
            else torch.empty(chunk.shape, dtype=chunk.dtype, device=chunk.device)
            for chunk in chunks
        ]

        def broadcasts() -> None:
            staged[ctx.rank].copy_(inp)
            for src, buffer in zip(ctx.ranks, staged, strict=True):
                dist.broadcast(buffer, src=src, group=ctx.group)
            for chunk, buffer in zip(chunks, staged, strict=True):
                if buffer is not chunk:
                    chunk.copy_(buffer)

        note = f"{GLOO_UNEVEN_NOTE}; {RAW_BYTES_PREDICTED}" if scrambles else GLOO_UNEVEN_NOTE
        own = tuple(b for b, c in zip(staged, chunks, strict=True) if b is not c)
        return ListGather(broadcasts, "broadcast", note, "", own)

    def gather() -> None:
        dist.all_gather(chunks, inp, group=ctx.group)

    return ListGather(gather, "all_gather", "", RAW_BYTES_DEFECT if scrambles else "")


def list_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    sizes = split_sizes(point.tokens, ctx.size)
    dtype = DTYPES[point.dtype]
    output = arena.empty((point.tokens, point.hidden), dtype)
    chunks = list(output.tensor_split(ctx.size))
    inp = arena.empty((sizes[ctx.rank], point.hidden), dtype)
    part, expected = _gather_parts(point, ctx, sizes)
    gather = list_gather(chunks, inp, ctx)
    return Bound(
        run=gather.run,
        inputs=(inp,),
        output=output,
        fill=lambda: part(ctx.rank, inp),
        expected=expected,
        padded_tokens=point.tokens,
        api=gather.api,
        note=gather.note,
        defect=gather.defect,
        scratch=gather.staged,
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
