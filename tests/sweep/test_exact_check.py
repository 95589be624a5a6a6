"""The check's pattern and comparison, on plain tensors: the fast paths give exactly the
values and the verdicts of the plain ones."""

from __future__ import annotations

import itertools

import pytest
import torch

from commbench.ops.arena import Arena
from commbench.ops.base import _pattern_rows, _row_terms, add_pattern, pattern
from commbench.point import Point
from commbench.sweep.exact_check import same_bits

HIDDEN = 40


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_the_pattern_past_its_table_equals_the_formula(dtype: str) -> None:
    """Gathered from the table (more rows than the modulus) or computed row by row, into
    `out` or not: the same values, from any first row and seed."""
    point = Point("all_gather", "tensor", dtype, 8, HIDDEN, 2, 2)
    for amplitude, rows, first, seed in itertools.product((1, 64, 128), (1, 300), (0, 7), (0, 3)):
        modulus = 2 * amplitude + 1
        terms = _row_terms(seed, rows, first, modulus, "cpu")
        formula = _pattern_rows(terms, HIDDEN, modulus, amplitude, point, "cpu")
        assert torch.equal(pattern(seed, rows, first, HIDDEN, amplitude, point, "cpu"), formula)
        out = torch.full((rows, HIDDEN), 7.0, dtype=formula.dtype)
        assert pattern(seed, rows, first, HIDDEN, amplitude, point, "cpu", out) is out
        assert torch.equal(out, formula)


def test_add_pattern_adds_what_a_second_pattern_holds() -> None:
    point = Point("reduce_scatter", "tensor", "bfloat16", 8, HIDDEN, 2, 2)
    rows = 600  # several of add_pattern's blocks, the last one short
    first = pattern(0, rows, 5, HIDDEN, 64, point, "cpu")
    summed = add_pattern(first.clone(), 1, 5, 64, point)
    assert torch.equal(summed, first + pattern(1, rows, 5, HIDDEN, 64, point, "cpu"))


def test_same_bits_compares_bits_not_values() -> None:
    ones = torch.ones(4, 6, dtype=torch.bfloat16)
    assert same_bits(ones, ones.clone())
    assert not same_bits(torch.zeros(4, 6), -torch.zeros(4, 6))  # equal values, other bits
    nan = torch.full((4, 6), float("nan"))
    assert same_bits(nan, nan.clone())  # the same bits, though NaN != NaN
    changed = ones.clone()
    changed[3, 5] = 2
    assert not same_bits(ones, changed)
    assert not same_bits(ones, ones[:2])
    assert not same_bits(ones, ones.float())
    assert same_bits(ones.T, ones.T.contiguous())  # a strided view, element by element
    assert not same_bits(changed.T, ones.T.contiguous())
    arena = Arena(torch.device("cpu"))
    arena.reserve(1024)
    odd = arena.empty((3,), torch.bfloat16)  # 6 bytes: not a whole number of words
    odd.copy_(torch.tensor([1.0, 2.0, 3.0]))
    assert same_bits(odd, torch.tensor([1.0, 2.0, 3.0], dtype=torch.bfloat16))
    assert not same_bits(odd, torch.tensor([1.0, 2.0, 4.0], dtype=torch.bfloat16))
