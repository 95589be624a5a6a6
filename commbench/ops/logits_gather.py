"""logits_gather [T, V/tp] -> [T, V]: the LM head's vocab-sharded logits, gathered.

As SGLang's logits processor does it (python/sglang/srt/layers/logits_processor.py):
when V is divisible by tp, all_gather_into_tensor into [tp, T, V/tp], then permute to
[T, V] (that copy is part of the cost); otherwise the list all_gather into views of a
transposed [V, T] buffer. For V not divisible by tp the tensor row is a what-if over a
vocab padded to a multiple of tp (`padded_vocab`), and the list row measures SGLang's path
as ProcessGroupNCCL runs it: raw-byte broadcasts into those non-contiguous views, whose
output is wrong for T > 1 (ops/all_gather.py, `list_gather`). The row says so, and is
measured all the same: its cost is what that code path pays.
"""

from __future__ import annotations

import torch

from commbench.ops.all_gather import GATHER_AMPLITUDE, list_gather
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

PADDED_NOTE = "vocab not divisible by tp: SGLang uses the list path; this is a padded what-if"


def _expected(point: Point, ctx: GroupContext, widths: list[int]):
    """Each rank's [T, width] slice of logits, and the gathered [T, sum(widths)] they make."""

    def part(group_rank: int) -> torch.Tensor:
        seed = ctx.ranks[group_rank]
        width = widths[group_rank]
        return pattern(seed, point.tokens, 0, width, GATHER_AMPLITUDE, point, ctx.device)

    return part, lambda out: torch.cat([part(r) for r in range(ctx.size)], dim=1, out=out)


def list_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    widths = split_sizes(point.vocab, ctx.size)
    dtype = DTYPES[point.dtype]
    gathered = arena.empty((point.vocab, point.tokens), dtype).T
    chunks = list(gathered.tensor_split(ctx.size, dim=-1))
    logits = arena.empty((point.tokens, widths[ctx.rank]), dtype)
    part, expected = _expected(point, ctx, widths)
    gather = list_gather(chunks, logits, ctx)
    return Bound(
        run=gather.run,
        inputs=(logits,),
        output=gathered,
        fill=lambda: logits.copy_(part(ctx.rank)),
        expected=expected,
        padded_tokens=point.tokens,
        padded_vocab=point.vocab,
        api=gather.api,
        note=gather.note,
        defect=gather.defect,
        scratch=gather.staged,
        hidden_bytes=flat_bytes(chunks),
    )


def tensor_variant(point: Point, ctx: GroupContext, arena: Arena) -> Bound:
    vocab = padded(point.vocab, ctx.size)
    width = vocab // ctx.size
    dtype = DTYPES[point.dtype]
    stacked = arena.empty((ctx.size, point.tokens, width), dtype)
    gathered = arena.empty((point.tokens, vocab), dtype)
    logits = arena.empty((point.tokens, width), dtype)
    part, expected = _expected(point, ctx, [width] * ctx.size)
    api, gather = tensor_api("all_gather_into_tensor", "all_gather_single")
    flat = stacked.view(ctx.size * point.tokens, width)  # concatenated along dim 0

    def run() -> None:
        gather(flat, logits, group=ctx.group)
        # SGLang's permute(1, 0, 2).reshape(T, V): one copy, here into a kept buffer
        gathered.view(point.tokens, ctx.size, width).copy_(stacked.permute(1, 0, 2))

    return Bound(
        run=run,
        inputs=(logits,),
        output=gathered,
        fill=lambda: logits.copy_(part(ctx.rank)),
        expected=expected,
        padded_tokens=point.tokens,
        padded_vocab=vocab,
        api=api,
        note="" if vocab == point.vocab else PADDED_NOTE,
        scratch=(stacked,),
    )


COLLECTIVE = Collective(
    name="logits_gather",
    variants={"list": list_variant, "tensor": tensor_variant},
    bus_factor=gather_factor,
)
