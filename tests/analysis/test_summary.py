"""The summary's words come from the numbers: checked on results whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.scenarios import VerdictCounts, recommendation, scenario_lines
from commbench.analysis.summary import side_by_side, verdict_lines
from commbench.rundir.reader import read_run
from commbench.rundir.schema import RESULT_COLUMNS


def _row(collective: str, variant: str, tokens: int, time_us: float, spread: float = 1.0):
    row = dict.fromkeys(RESULT_COLUMNS, 0)
    row.update(
        collective=collective,
        variant=variant,
        backend="gloo",
        world_size=4,
        dp=2,
        tp=2,
        dtype="bfloat16",
        tokens=tokens,
        hidden=4096,
        padded_tokens=tokens + tokens % 2 if variant == "tensor" else tokens,
        bytes=tokens * 4096 * 2,
        time_us=time_us,
        time_us_p10=time_us - spread,
        time_us_p90=time_us + spread,
        ci_low_us=time_us - spread,
        ci_high_us=time_us + spread,
        check="pass",
        note="",
        cv=0.01,
    )
    return row


def _results(pairs: dict[int, tuple[float, float]], collective: str = "all_gather"):
    rows = []
    for tokens, (list_us, tensor_us) in pairs.items():
        rows += [
            _row(collective, "list", tokens, list_us),
            _row(collective, "tensor", tokens, tensor_us),
        ]
    return pd.DataFrame(rows)


def test_clear_wins_everywhere() -> None:
    comparison = side_by_side(_results({1: (20, 10), 128: (40, 20), 2048: (400, 100)}))
    assert list(comparison["verdict"]) == ["win", "win", "win"]
    assert list(comparison["speedup"]) == [2.0, 2.0, 4.0]
    (line,) = verdict_lines(comparison)
    assert "faster beyond noise in 3 of 3 points" in line
    assert "geometric-mean speedup 2.52x" in line
    assert "largest win 4.00x at tp=2 dp=2 T=2048 H=4096 bfloat16" in line
    assert "Never slower beyond noise" in line
    assert line.endswith("Recommendation: use the tensor form.")


def test_overlapping_intervals_are_ties_whatever_the_ratio() -> None:
    comparison = side_by_side(_results({1: (10.5, 10.0), 8: (10.0, 10.9)}))
    assert list(comparison["verdict"]) == ["tie", "tie"]
    assert verdict_lines(comparison)[0].endswith("no difference beyond noise; either form.")


def test_losses_are_named() -> None:
    comparison = side_by_side(_results({1: (10, 20), 128: (40, 20), 2048: (400, 100)}))
    assert list(comparison["verdict"]) == ["loss", "win", "win"]
    (line,) = verdict_lines(comparison)
    assert "Slower beyond noise in 1: tp=2 dp=2 T=1 H=4096 bfloat16 (0.50x)" in line
    assert "tensor form is faster overall; choose per shape" in line


def test_failed_rows_are_left_out_of_the_comparison() -> None:
    results = _results({1: (20, 10), 8: (20, 10)})
    results.loc[3, "check"] = "fail"  # the tensor row of T=8
    assert list(side_by_side(results)["tokens"]) == [1]


def test_recommendation_table() -> None:
    assert recommendation(VerdictCounts(3, 0, 0, 0), 1.5) == "Recommendation: use the tensor form."
    assert "keep the list form" in recommendation(VerdictCounts(0, 3, 0, 0), 0.7)
    assert "no gain from the tensor" in recommendation(VerdictCounts(0, 1, 0, 0), 0.98)
    assert "no difference beyond noise" in recommendation(VerdictCounts(0, 0, 2, 0), 1.0)
    assert recommendation(VerdictCounts(0, 0, 1, 3), 1.5) == (
        "No recommendation: 3 of 4 points are unstable (cv >= 0.10), 1 tie(s) within noise,"
        " none faster beyond noise; measure on a quieter machine."
    )
    # one stable win among unstable rows is enough: the advice rests on it alone
    assert recommendation(VerdictCounts(1, 0, 0, 9), 1.0) == "Recommendation: use the tensor form."


# Real run directories: per token count, the list and tensor forms' median (us) and the
# relative spread of their samples (0.01: stable; 0.5: cv far above 0.10).
def _run(path: Path, forms: dict[int, tuple[float, float, float, float]]) -> Path:
    rows = []
    for seed, (tokens, (list_us, list_spread, tensor_us, tensor_spread)) in enumerate(
        forms.items()
    ):
        for variant, median, spread in (("list", list_us, list_spread),
                                        ("tensor", tensor_us, tensor_spread)):  # fmt: skip
            samples = samples_around(median, 40, spread, seed=seed)
            rows.append((key(variant=variant, tokens=tokens), abs(samples)))
    return write_run(path, rows)


def _summary(path: Path) -> tuple[list[str], list[str]]:
    comparison = side_by_side(read_run(path).results)
    return verdict_lines(comparison), scenario_lines(comparison)


def test_all_unstable_rows_recommend_nothing(tmp_path: Path) -> None:
    """Every row's samples scatter (cv far above 0.10): however large the ratios, no
    recommendation and no crossover; and the report says so through the real CLI."""
    run = _run(tmp_path / "run", {t: (200.0, 0.5, 100.0, 0.5) for t in (1, 64, 4096)})
    (verdict,), (scenario,) = _summary(run)
    # no speedup figure leads a verdict nothing supports
    assert verdict.startswith("all_gather: no difference beyond noise at any of its 3 points")
    assert "(3 unstable, not counted)" in verdict and "geometric-mean speedup" not in verdict
    assert "largest win" not in verdict and "Never slower" not in verdict
    assert verdict.endswith(
        "No recommendation: 3 of 3 points are unstable (cv >= 0.10), none"
        " faster beyond noise; measure on a quieter machine."
    )
    assert ": no difference beyond noise at any T (medians' ratios, within the noise:" in scenario
    assert scenario.endswith(
        "No recommendation: 3 of 3 points are unstable (cv >= 0.10), none"
        " faster beyond noise; measure on a quieter machine."
    )
    done = commbench_here("report", str(run))
    assert done.returncode == 0, done.stderr
    assert "use the tensor form" not in done.stdout
    assert done.stdout.count("No recommendation: 3 of 3 points are unstable") == 2
    assert "Recommendation:" not in done.stdout


def test_mixed_rows_rest_on_the_stable_ones(tmp_path: Path) -> None:
    """A clean win at T=1, an unstable 'win' at T=64 and an unstable 'loss' at T=4096: the
    advice rests on T=1 alone; no crossover is claimed from the unstable loss, and never
    slower beyond noise holds with it."""
    run = _run(
        tmp_path / "run",
        {1: (200.0, 0.01, 100.0, 0.01), 64: (300.0, 0.5, 100.0, 0.01),
         4096: (100.0, 0.01, 300.0, 0.5)},
    )  # fmt: skip
    (verdict,), (scenario,) = _summary(run)
    assert "faster beyond noise in 1 of 3 points (2 unstable, not counted)" in verdict
    assert "largest win 2.00x at tp=2 dp=2 T=1 " in verdict
    assert "Never slower beyond noise." in verdict
    assert verdict.endswith("Recommendation: use the tensor form.")
    assert "tensor faster at every token count where the forms differ beyond noise (1 of 3)" in (
        scenario
    )
    assert "list faster" not in scenario and "crossover" not in scenario


@pytest.mark.parametrize("loss_at", [4096, None])
def test_clean_rows_never_say_both_never_slower_and_list_faster(
    tmp_path: Path, loss_at: int | None
) -> None:
    """Stable rows: a real loss at the largest T gives a crossover and names the loss; no
    loss gives neither."""
    forms = {t: (200.0, 0.01, 100.0, 0.01) for t in (1, 64, 4096)}
    if loss_at:
        forms[loss_at] = (100.0, 0.01, 200.0, 0.01)
    (verdict,), (scenario,) = _summary(_run(tmp_path / "run", forms))
    never_slower = "Never slower beyond noise" in verdict
    list_above = "(list faster above)" in scenario
    assert never_slower != list_above
    if loss_at:
        assert "Slower beyond noise in 1: tp=2 dp=2 T=4096" in verdict
        assert "crossover between T=64 and T=4096 (list faster above)" in scenario
        assert "choose per shape" in verdict
    else:
        assert "tensor faster at every token count." in scenario
        assert verdict.endswith("Recommendation: use the tensor form.")


def test_report_markdown_names_collectives_counts_unstable_rows_and_heads_tables(
    tmp_path: Path,
) -> None:
    """Eight unstable rows: five named, 'and 3 more'; every measured row says its
    collective; the environment table has a header; the command is the one typed."""
    run = _run(tmp_path / "run", {t: (200.0, 0.5, 100.0, 0.5) for t in (1, 8, 64, 4096)})
    meta = json.loads((run / "meta.json").read_text())
    meta["host"] = {"argv": ["sweep", "--nproc", "2", "--tokens", "1,8,64,4096"]}
    (run / "meta.json").write_text(json.dumps(meta))
    markdown = tmp_path / "report.md"
    done = commbench_here("report", str(run), "--markdown", str(markdown))
    assert done.returncode == 0, done.stderr
    text = markdown.read_text()
    (unstable,) = [line for line in text.splitlines() if "unstable row(s)" in line]
    assert unstable.startswith("- 8 unstable row(s)") and unstable.endswith("; and 3 more")
    assert unstable.count(" cv=") == 5
    assert "; and 3 more" in done.stdout  # the terminal summary says the same
    assert "| setting | value |" in text
    assert "| command | `commbench sweep --nproc 2 --tokens 1,8,64,4096` |" in text
    every = text.split("### Every measured row")[1].splitlines()
    table = [line for line in every if line.startswith("| ")]
    assert table[0].startswith("| collective | variant | tp |")
    assert len(table) == 1 + 8 and all(line.startswith("| all_gather | ") for line in table[1:])
    assert "| unstable |" in text  # the list vs tensor table's verdict


def test_tables_list_tokens_in_order_whatever_the_rounds_wrote(tmp_path: Path) -> None:
    """A run's files hold its rows in the shuffled order of its rounds; every table sorts."""
    rows = [
        (key(variant=variant, tokens=tokens), samples_around(100, 8))
        for tokens in (1024, 7, 64)
        for variant in ("list", "tensor")
    ]
    run = write_run(tmp_path / "run", rows)
    report = commbench_here("report", str(run))
    firsts = [line.split("│")[1].strip() for line in report.stdout.splitlines()
              if line.startswith("│") and line.split("│")[1].strip().isdigit()]  # fmt: skip
    assert firsts == ["7", "64", "1024"]
    markdown = commbench_here("report", str(run), "--markdown", str(tmp_path / "r.md"))
    assert markdown.returncode == 0
    text = (tmp_path / "r.md").read_text()
    assert text.index("| 7 |") < text.index("| 64 |") < text.index("| 1024 |")
