"""all_to_all: MoE expert-parallel dispatch, [rows to each peer, H] chunks, sized by routing.

The group of `tp` ranks is the expert-parallel group; each rank sends every peer the
hidden states of its tokens routed to that peer's experts (commbench/routing.py: the
split matrix every rank derives from the point, no exchange). Three forms:

- `list`: `dist.all_to_all(out_views, in_views)` over views of one input and one output
  buffer. ProcessGroupNCCL runs it as one grouped send/recv pair per peer
  (torch::cuda::nccl::all2all); gloo (torch 2.13) refuses chunks of different sizes
  ("invalid tensor size"), so on gloo an uneven list runs that same grouped send/recv
  explicitly (`batch_isend_irecv`), and the row says so.
- `tensor`: `dist.all_to_all_single(out, inp, out_splits, in_splits)`, uneven splits.
- `padded`: what CUDA-graph decode paths do, whose sizes must not change: every chunk
  padded to the capacity (the largest chunk of this routing, the least a static capacity
  could be), then one even `all_to_all_single`. Padding rows are zero, so the check
  covers the whole output.

The combine (all_to_all_combine.py) sends the expert outputs back: the same exchange
over the transposed split matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from commbench.ops.all_gather import GATHER_AMPLITUDE
from commbench.ops.arena import Arena
from commbench.ops.base import DTYPES, Bound, Collective, GroupContext, gather_factor, pattern
from commbench.point import Point
from commbench.routing import Routing, route

GLOO_UNEVEN_NOTE = (
    "gloo refuses an uneven list all_to_all: ran ProcessGroupNCCL's way, one grouped"
    " send/recv per peer"
)


def routing_of(point: Point) -> Routing:
    return route(point.tokens, point.tp, point.experts, point.topk, point.skew)


@dataclass(frozen=True, eq=False)
class Exchange:
    """One phase on this rank: chunk sizes and where each chunk's rows come from."""

    matrix: np.ndarray  # [tp, tp] rows group rank i sends group rank j
    tokens: Callable[[int, int], np.ndarray]  # (i, j) -> the token of each row i sends j
    point: Point
    ctx: GroupContext

    @property
    def sends(self) -> list[int]:
        return self.matrix[self.ctx.rank].tolist()

    @property
    def receives(self) -> list[int]:
        return self.matrix[:, self.ctx.rank].tolist()

    def rows(self, src: int, dst: int) -> torch.Tensor:
        """The rows `src` sends `dst`: a pattern of (sending rank, token), exact in every dtype."""
        ids = self.tokens(src, dst)
        point, ctx = self.point, self.ctx
        if not len(ids):
            return torch.empty((0, point.hidden), dtype=DTYPES[point.dtype], device=ctx.device)
        first = int(ids[0])  # ascending: one pattern over their span, then the rows wanted
        span = pattern(
            ctx.ranks[src],
            int(ids[-1]) - first + 1,
            first,
            point.hidden,
            GATHER_AMPLITUDE,
            point,
            ctx.device,
        )
        return span[torch.from_numpy(ids - first).to(ctx.device)]

    def fill(self, chunks: list[torch.Tensor]) -> None:
        """Write our rows for each peer into the start of its chunk, zeros after them."""
        for dst, chunk in enumerate(chunks):
            rows = self.rows(self.ctx.rank, dst)
            chunk[: len(rows)].copy_(rows)
            chunk[len(rows) :].zero_()

    def expected(self, out: torch.Tensor, capacity: int | None = None) -> torch.Tensor:
        """What we must receive: each peer's rows in rank order, each chunk padded with
        zeros to `capacity` rows when given."""
        parts = []
        for src in range(self.ctx.size):
            rows = self.rows(src, self.ctx.rank)
            parts.append(rows)
            if capacity is not None:
                parts.append(rows.new_zeros((capacity - len(rows), self.point.hidden)))
        return torch.cat(parts, out=out)


def dispatch(point: Point, ctx: GroupContext) -> Exchange:
    routing = routing_of(point)
    return Exchange(routing.matrix, routing.token_ids, point, ctx)


def list_all_to_all(
    outs: list[torch.Tensor], ins: list[torch.Tensor], ctx: GroupContext, even: bool
) -> tuple[Callable[[], None], str, str]:
    """The list all_to_all of `ins` into `outs`: (run, api, note). `even`: every chunk of
    the group has one size (decided from the split matrix, so every rank decides alike:
    a rank whose own chunks happen to be equal must not take gloo's path alone)."""
    if not even and ctx.backend == "gloo":

        def grouped_send_recv() -> None:
            outs[ctx.rank].copy_(ins[ctx.rank])
            ops = [
                dist.P2POp(op, chunk, peer, ctx.group)
                for peer, out, inp in zip(ctx.ranks, outs, ins, strict=True)
                if peer != ctx.global_rank
                for op, chunk in ((dist.isend, inp), (dist.irecv, out))
                if chunk.numel()
            ]
            for work in dist.batch_isend_irecv(ops) if ops else ():
                work.wait()

        return grouped_send_recv, "batch_isend_irecv", GLOO_UNEVEN_NOTE

    def all_to_all() -> None:
        dist.all_to_all(outs, ins, group=ctx.group)

    return all_to_all, "all_to_all", ""


def list_variant(exchange: Exchange, arena: Arena) -> Bound:
    point, ctx = exchange.point, exchange.ctx
    dtype = DTYPES[point.dtype]
    inp = arena.empty((sum(exchange.sends), point.hidden), dtype)
    output = arena.empty((sum(exchange.receives), point.hidden), dtype)
    ins = list(inp.split(exchange.sends))
    outs = list(output.split(exchange.receives))
    even = bool((exchange.matrix == exchange.matrix.flat[0]).all())
    run, api, note = list_all_to_all(outs, ins, ctx, even)
    return Bound(
        run=run,
        inputs=(inp,),
        output=output,
        fill=lambda: exchange.fill(ins),
        expected=exchange.expected,
        padded_tokens=point.tokens,
        api=api,
        note=note,
    )


def tensor_variant(exchange: Exchange, arena: Arena) -> Bound:
    point, ctx = exchange.point, exchange.ctx
    dtype = DTYPES[point.dtype]
    sends, receives = exchange.sends, exchange.receives
    inp = arena.empty((sum(sends), point.hidden), dtype)
    output = arena.empty((sum(receives), point.hidden), dtype)
    ins = list(inp.split(sends))
    return Bound(
        run=lambda: dist.all_to_all_single(output, inp, receives, sends, group=ctx.group),
        inputs=(inp,),
        output=output,
        fill=lambda: exchange.fill(ins),
        expected=exchange.expected,
        padded_tokens=point.tokens,
        api="all_to_all_single",
    )


def padded_variant(exchange: Exchange, arena: Arena) -> Bound:
    point, ctx = exchange.point, exchange.ctx
    dtype = DTYPES[point.dtype]
    capacity = int(exchange.matrix.max())  # >= 1: every token goes somewhere
    inp = arena.empty((ctx.size * capacity, point.hidden), dtype)
    output = arena.empty((ctx.size * capacity, point.hidden), dtype)
    ins = list(inp.split(capacity))
    return Bound(
        run=lambda: dist.all_to_all_single(output, inp, group=ctx.group),
        inputs=(inp,),
        output=output,
        fill=lambda: exchange.fill(ins),
        expected=lambda out: exchange.expected(out, capacity),
        padded_tokens=point.tokens,
        api="all_to_all_single",
    )


@dataclass(frozen=True)
class RoutedCollective(Collective):
    """A collective whose chunks the MoE routing sizes (nccl-tests' alltoall conventions).

    `bytes` (commbench.catalogue.row_bytes) is what a rank sends, as nccl-tests' alltoall
    counts it, averaged over the group's ranks; the busiest rank moves `bytes * imbalance`.
    `routed_bytes` and `padded_bytes` are the group's totals for the uneven forms and for
    the padded one.
    """

    def columns(self, point: Point) -> dict[str, object]:
        routing = routing_of(point)
        return {
            "routed_bytes": routing.routed_rows * self._row_bytes(point),
            "padded_bytes": routing.padded_rows * self._row_bytes(point),
            "imbalance": routing.imbalance,
        }

    @staticmethod
    def _row_bytes(point: Point) -> int:
        return point.hidden * point.element_size


def routed_variants(
    exchange: Callable[[Point, GroupContext], Exchange],
) -> dict[str, Callable[[Point, GroupContext, Arena], Bound]]:
    """The three forms over one phase's exchange (dispatch here, combine transposed)."""
    forms = {"list": list_variant, "tensor": tensor_variant, "padded": padded_variant}
    return {
        name: (lambda point, ctx, arena, form=form: form(exchange(point, ctx), arena))
        for name, form in forms.items()
    }


COLLECTIVE = RoutedCollective(
    name="all_to_all",
    variants=routed_variants(dispatch),
    bus_factor=gather_factor,
)
