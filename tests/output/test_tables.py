"""The cells of the gate's tables and JUnit text: ratios one degree of freedom makes huge."""

from __future__ import annotations

import math

from commbench.output.cells import interval, multiple


def test_a_ratio_is_shown_in_full_up_to_ten_thousand_then_in_powers_of_ten() -> None:
    assert interval(0.8123, 1.25) == "0.812 to 1.250"
    assert interval(0.0, 2.4e191) == "0.000 to 2.4e+191"
    assert multiple(1.5) == "1.50x"
    assert multiple(12345.0) == "1.2e+04x"


def test_a_shift_no_run_could_show_is_inf_and_one_not_computed_is_empty() -> None:
    assert multiple(math.inf) == "inf"
    assert multiple(math.nan) == ""
    assert interval(math.nan, math.nan) == ""
