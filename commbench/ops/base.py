"""What every collective in the catalogue declares (the model is nccl-tests' testColl).

A collective is a name, a byte count, a bus-bandwidth factor and its variants; a
variant binds buffers on this rank and returns what the harness runs and checks. The
harness never special-cases a collective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from commbench.catalogue import CATALOGUE, Width, row_bytes
from commbench.ops.arena import Arena
from commbench.point import ELEMENT_SIZE, Point

DTYPES = {name: getattr(torch, name) for name in ELEMENT_SIZE}

# The largest magnitude whose sums stay exact: every partial sum of up to `n` check
# values must be an integer that bf16 (8 significant bits) represents exactly, so the
# expected sums can be added up in the dtype itself.
EXACT_LIMIT = 256


@dataclass(frozen=True)
class GroupContext:
    """This rank's view of its dp group: the ranks that run one collective together."""

    group: dist.ProcessGroup
    ranks: tuple[int, ...]  # global ranks, indexed by group rank
    rank: int  # this process's rank inside the group
    device: torch.device
    backend: str

    @property
    def size(self) -> int:
        return len(self.ranks)

    @property
    def global_rank(self) -> int:
        return self.ranks[self.rank]


@dataclass
class Bound:
    """One variant bound to its buffers on this rank."""

    run: Callable[[], object]  # one operation, as the timed loop issues it
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor
    fill: Callable[[], None]  # write the check pattern into the inputs
    # What `output` must equal after one `run`, written into the tensor given (of the
    # output's shape and dtype) and returned: the caller owns the memory
    # (commbench/sweep/exact_check.py).
    expected: Callable[[torch.Tensor], torch.Tensor]
    padded_tokens: int
    api: str  # the torch.distributed call that was measured
    padded_vocab: int = 0  # logits_gather: the vocab actually moved (a multiple of tp)
    note: str = ""  # anything a reader of the row must know (e.g. a fallback was run)
    scratch: tuple[torch.Tensor, ...] = ()  # buffers of its own between inputs and output
    # What the backend allocates at every call beyond these buffers: ProcessGroupNCCL's
    # flat copy of a list form's equal-sized chunks (`newLikeFlat` in allgather and
    # reduce_scatter); counted by --max-bytes, and what `temp_mem_bytes` should measure.
    hidden_bytes: int = 0
    # A known defect of the code path measured, which the check exposes: the row fails
    # the check with this note and is measured all the same (its cost is real).
    defect: str = ""


# A variant binds a point to buffers on this rank (commbench.catalogue names them).
Binder = Callable[[Point, GroupContext, Arena], Bound]


@dataclass(frozen=True)
class Collective:
    name: str
    variants: dict[str, Binder]
    bus_factor: Callable[[int], float]  # busbw = algbw * bus_factor(group size)

    @property
    def routed(self) -> bool:
        return CATALOGUE[self.name].routed

    @property
    def width(self) -> Width:
        return CATALOGUE[self.name].width

    def bytes(self, point: Point) -> float:
        """The row's size (commbench.catalogue.row_bytes)."""
        return row_bytes(point)

    def columns(self, point: Point) -> dict[str, object]:
        """The row's columns this collective adds, known before anything is allocated."""
        return {}


def gather_factor(n: int) -> float:
    return (n - 1) / n


def split_sizes(total: int, parts: int) -> list[int]:
    """Row counts of `tensor_split(parts)`: the first `total % parts` chunks get one more."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def padded(tokens: int, parts: int) -> int:
    """Tokens rounded up to a multiple of the group size (SGLang PR 8278)."""
    return -(-tokens // parts) * parts


def pattern(
    seed: int,
    rows: int,
    first_row: int,
    hidden: int,
    amplitude: int,
    point: Point,
    device,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Small integers that depend on (seed rank, row, column): exact in every dtype.

    Values lie in [-amplitude, amplitude]; distinct coefficients for row, column and
    rank make a chunk written to the wrong place or from the wrong rank show up. The value
    is (row * 7919 + column * 31 + seed * 1009) mod (2 * amplitude + 1) - amplitude: a row
    depends on its row term (row * 7919 + seed * 1009) mod (2 * amplitude + 1) alone, so
    past that many rows every row is a copy of one of a small table's, and the pattern is
    that table's rows gathered (one copy per row, written into `out` when given): the check
    stays cheap beside the timing even at prefill sizes.
    """
    modulus = 2 * amplitude + 1
    terms = _row_terms(seed, rows, first_row, modulus, device)
    if rows <= modulus:
        values = _pattern_rows(terms, hidden, modulus, amplitude, point, device)
        return values if out is None else out.copy_(values)
    table = _pattern_table(hidden, amplitude, point, device)
    return torch.index_select(table, 0, terms, out=out)


ADD_BLOCK_ROWS = 256  # rows `add_pattern` gathers at a time: a buffer that stays in cache


def add_pattern(
    out: torch.Tensor, seed: int, first_row: int, amplitude: int, point: Point
) -> torch.Tensor:
    """`out += pattern(seed, len(out) rows from first_row)`, through a buffer of a few
    rows: the expected sums of the reducing collectives allocate nothing as large as `out`
    (a large allocation's first touch costs more than the gather itself on CPU)."""
    rows, hidden = out.shape
    modulus = 2 * amplitude + 1
    terms = _row_terms(seed, rows, first_row, modulus, out.device)
    table = _pattern_table(hidden, amplitude, point, out.device)
    buffer = torch.empty((min(rows, ADD_BLOCK_ROWS), hidden), dtype=out.dtype, device=out.device)
    for start in range(0, rows, ADD_BLOCK_ROWS):
        block = out[start : start + ADD_BLOCK_ROWS]
        gathered = buffer[: len(block)]
        torch.index_select(table, 0, terms[start : start + len(block)], out=gathered)
        block += gathered
    return out


def summed_pattern(
    out: torch.Tensor, sources: tuple[int, ...], first_row: int, amplitude: int, point: Point
) -> torch.Tensor:
    """What a reducing collective's rows from `first_row` on must hold: the sum of every
    source rank's pattern, written into `out` (summed in the dtype itself: exact while
    the amplitude keeps to EXACT_LIMIT)."""
    first, *others = sources
    rows, hidden = out.shape
    pattern(first, rows, first_row, hidden, amplitude, point, out.device, out)
    for src in others:
        add_pattern(out, src, first_row, amplitude, point)
    return out


def _row_terms(seed: int, rows: int, first_row: int, modulus: int, device) -> torch.Tensor:
    row = torch.arange(first_row, first_row + rows, device=device, dtype=torch.int64)
    return (row * 7919 + seed * 1009) % modulus


def _pattern_table(hidden: int, amplitude: int, point: Point, device) -> torch.Tensor:
    """Every distinct row of the pattern, indexed by its row term."""
    modulus = 2 * amplitude + 1
    return _pattern_rows(
        torch.arange(modulus, device=device), hidden, modulus, amplitude, point, device
    )


def _pattern_rows(
    terms: torch.Tensor, hidden: int, modulus: int, amplitude: int, point: Point, device
) -> torch.Tensor:
    """The pattern's rows for the given row terms: (term + column * 31) mod modulus -
    amplitude, the column terms reduced first so the [rows, hidden] work is one int16 add
    and remainder."""
    col = ((torch.arange(hidden, device=device, dtype=torch.int64) * 31) % modulus).to(torch.int16)
    mixed = terms.to(torch.int16)[:, None] + col[None, :]  # < 2 * modulus <= 1026: int16 holds it
    return (mixed.remainder_(modulus).sub_(amplitude)).to(DTYPES[point.dtype])


def sum_amplitude(group_size: int) -> int:
    return max(1, EXACT_LIMIT // group_size)


def flat_bytes(chunks: list[torch.Tensor]) -> int:
    """The flat buffer ProcessGroupNCCL stacks a list of equal-sized chunks into (and gloo
    too); uneven chunks go through per-rank broadcasts or reduces instead, with none."""
    if len({chunk.shape for chunk in chunks}) > 1:
        return 0
    return sum(chunk.numel() * chunk.element_size() for chunk in chunks)


def tensor_api(old: str, new: str) -> tuple[str, Callable[..., object]]:
    """The newest name this torch has (2.13 renames *_into_tensor/*_tensor to *_single)."""
    name = new if hasattr(dist, new) else old
    return name, getattr(dist, name)
