"""The exact-output check (docs/method.md, "Checking"): before a point is timed, its operation
runs once on a pattern of small integers and its output is compared bit for bit with
what it must be, and the ranks agree on the verdict."""

from __future__ import annotations

import torch

from commbench.ops.arena import Arena
from commbench.ops.base import Bound
from commbench.sweep.agreement import PointSkipped, first_problem
from commbench.sweep.faults import backend_message
from commbench.sweep.world import World


def prepare_check(bound: Bound, memory: Arena | None = None) -> torch.Tensor:
    """Everything the check allocates before its collective: the pattern in the inputs,
    the expected output (in `memory`, reused from point to point: a fresh allocation's
    first touch costs more than computing it on CPU), and room for the backend's flat
    buffer (allocated and freed again: the caching allocator keeps the block for the
    collective to reuse)."""
    memory = memory or Arena(bound.output.device)
    output = bound.output
    memory.reserve(output.numel() * output.element_size())
    memory.reset()
    bound.fill()
    expected = bound.expected(memory.empty(tuple(output.shape), output.dtype))
    if bound.hidden_bytes:
        room = torch.empty(bound.hidden_bytes, dtype=torch.uint8, device=output.device)
        del room
    return expected


def same_bits(output: torch.Tensor, expected: torch.Tensor) -> bool:
    """Bit for bit, compared as integers of the same width (as 8-byte words where both are
    contiguous): a float comparison would take -0.0 for 0.0 and never match a NaN."""
    if output.shape != expected.shape or output.dtype != expected.dtype:
        return False
    if all(_words(tensor) for tensor in (output, expected)):
        return torch.equal(output.view(-1).view(torch.int64), expected.view(-1).view(torch.int64))
    as_int = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    width = as_int[output.element_size()]
    return torch.equal(output.view(width), expected.view(width))


def _words(tensor: torch.Tensor) -> bool:
    """Whether `tensor` can be read as 8-byte words: contiguous, aligned, a whole number."""
    start = tensor.storage_offset() * tensor.element_size()
    return tensor.is_contiguous() and start % 8 == 0 and tensor.nbytes % 8 == 0


def check(bound: Bound, world: World, expected: torch.Tensor | None = None) -> bool:
    """Run once on the check pattern and compare bit for bit, agreed over all ranks.
    `expected` is `prepare_check`'s, when the caller has it (and has filled the inputs).
    Its operation is the point's first: the warm-up does not time it (timing.warm_up).

    An operation this torch's backend lacks (gloo's list reduce_scatter before torch 2.8:
    "ProcessGroupGloo does not support reduce_scatter") is refused on every rank before
    anything is sent: PointSkipped, with the backend's words, on every rank. The verdict
    and the refusal travel in one gather of two numbers; the words only when refused.
    """
    if expected is None:
        expected = prepare_check(bound)
    problem = None
    try:
        bound.run()
    except (RuntimeError, NotImplementedError) as err:  # refused before communicating
        if "does not support" not in str(err):
            raise
        problem = f"skipped: {backend_message(err)} (torch {torch.__version__})"
    passed = problem is None and same_bits(bound.output, expected)
    every = world.gather_floats([problem is not None, passed])
    if every[:, 0].max() > 0:
        raise PointSkipped(first_problem(world, problem))
    return bool(every[:, 1].min() > 0)
