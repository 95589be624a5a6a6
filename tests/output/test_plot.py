"""Plots: the files written, what the figures show, and bad input through the real CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.image as mpimg
import pytest
from support.cli import commbench, commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.errors import UsageError
from commbench.output.plot import UNSTABLE_GREY, figures, plot_runs
from commbench.rundir.reader import read_run

# list time / tensor time per (tokens, hidden): a win, a smaller win, a tie and a loss
SPEEDUPS = {(8, 1024): 1.6, (8, 4096): 1.2, (64, 1024): 1.0, (64, 4096): 0.7}
AG = "plot-all_gather-tp2-dp2-bfloat16"


def sweep_rows(collectives=("all_gather", "all_reduce"), hiddens=(1024, 4096), scale=1.0):
    """A tp=2 sweep over tokens 8, 64 and HIDDENS, plus one failed float32 row.

    Every row's samples come from the same seed, so each speedup is exactly SPEEDUPS'.
    """
    rows: list[tuple[dict, object]] = []
    for collective in collectives:
        variants = ("tensor",) if collective == "all_reduce" else ("list", "tensor")
        for variant in variants:
            for (tokens, hidden), speedup in SPEEDUPS.items():
                if hidden not in hiddens:
                    continue
                median = scale * tokens * hidden / 50 * (speedup if variant == "list" else 1.0)
                row_key = {**key(collective, variant, tokens), "hidden": hidden}
                rows.append((row_key, samples_around(median, seed=3)))
    rows.append((key("all_gather", "tensor", 8, dtype="float32"), "fail"))
    return rows


def test_one_run_writes_pngs_into_its_directory(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sweep_rows())
    paths = plot_runs([run], None, "png")
    expected = {
        f"plot-{collective}-tp2-dp2-bfloat16-H{hidden}-{metric}.png"
        for collective in ("all_gather", "all_reduce")
        for hidden in (1024, 4096)
        for metric in ("busbw", "time")
    } | {f"{AG}-speedup.png"}  # all_reduce has no list form: no heatmap; float32 failed
    assert {p.name for p in paths} == expected
    assert {p.name for p in run.glob("plot-*")} == expected
    for path in paths:
        assert path.parent == run
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
        height, width = mpimg.imread(path).shape[:2]
        assert 300 <= height <= 1500 and 500 <= width <= 2000


def test_the_heatmap_shows_each_speedup_in_its_cell(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "run", sweep_rows(("all_gather",))))
    ax = dict(figures([run]))[f"{AG}-speedup"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1024", "4096"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["8", "64"]
    cells = {t.get_text(): (tuple(t.get_position()), t.get_fontweight()) for t in ax.texts}
    assert cells == {
        "1.60x": ((0, 0), "bold"),  # beyond noise: the intervals do not overlap
        "1.20x": ((1, 0), "bold"),
        "1.00x": ((0, 1), "normal"),  # a tie
        "0.70x": ((1, 1), "bold"),
    }
    image = ax.images[0]
    rgba = image.to_rgba(image.get_array())
    win, tie, loss = rgba[0, 0], rgba[1, 0], rgba[1, 1]
    assert win[2] > win[0] and loss[0] > loss[2]  # blue: the tensor form is faster
    assert min(tie[:3]) > 0.9  # the diverging scale is centred on 1.0: white


def test_several_runs_put_every_label_in_the_lines(tmp_path: Path) -> None:
    small = {"collectives": ("all_gather",), "hiddens": (1024,)}
    a = write_run(tmp_path / "a", sweep_rows(**small), label="a")
    b = write_run(tmp_path / "b", sweep_rows(**small, scale=1.2), label="b")
    named = dict(figures([read_run(a), read_run(b)]))
    assert set(named) == {
        f"{AG}-H1024-busbw",
        f"{AG}-H1024-time",
        f"{AG}-speedup-a",
        f"{AG}-speedup-b",
    }
    ax = named[f"{AG}-H1024-time"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a: list", "a: tensor", "b: list", "b: tensor"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["a: tensor"].get_color() == lines["b: tensor"].get_color()
    assert lines["a: tensor"].get_linestyle() != lines["b: tensor"].get_linestyle()
    assert list(lines["b: tensor"].get_ydata()) == pytest.approx(
        [1.2 * y for y in lines["a: tensor"].get_ydata()], rel=1e-6
    )
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "(b)" in named[f"{AG}-speedup-b"].get_suptitle()

    paths = plot_runs([a, b], None, "png")  # default: the first run's directory
    assert {p.name for p in paths} == {f"{name}.png" for name in named}
    assert all(p.parent == a and p.is_file() for p in paths)
    assert not list(b.glob("plot-*"))


def test_runs_sharing_a_label_are_told_apart_by_path(tmp_path: Path) -> None:
    small = sweep_rows(("all_reduce",), (1024,))
    runs = [read_run(write_run(tmp_path / side / "run", small)) for side in ("x", "y")]
    ax = dict(figures(runs))["plot-all_reduce-tp2-dp2-bfloat16-H1024-busbw"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{tmp_path / side / 'run'}: tensor" for side in ("x", "y")]


def test_out_is_honoured_and_created(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sweep_rows(("all_reduce",), (1024,)))
    out = tmp_path / "pictures" / "nested"
    paths = plot_runs([run], out, "png")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert len(paths) == 2 and not list(run.glob("plot-*"))


def test_an_unusable_out_or_no_runs_is_a_usage_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sweep_rows(("all_reduce",), (1024,)))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"^out: .*/file/sub. cannot be created: Not a directory"):
        plot_runs([run], blocker / "sub", "png")
    with pytest.raises(UsageError, match=r"^runs: "):
        plot_runs([], None, "png")


def test_svg_through_the_cli(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sweep_rows(("all_gather",), (1024,)))
    done = commbench("plot", str(run), "--format", "svg", "--out", str(tmp_path / "svg"))
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert {p.name for p in paths} == {
        f"{AG}-H1024-busbw.svg",
        f"{AG}-H1024-time.svg",
        f"{AG}-speedup.svg",
    }
    for path in paths:
        assert path.parent == tmp_path / "svg"
        assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("case", ["format", "missing"])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    run = write_run(tmp_path / "run", sweep_rows(("all_reduce",), (1024,)))
    args, message = {
        "format": ([str(run), "--format", "jpg"], "format: must be png or svg (got 'jpg')"),
        "missing": ([str(run), str(tmp_path / "missing")], f"{tmp_path / 'missing'}: not a run"),
    }[case]
    done = commbench_here("plot", *args)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"commbench: error: {message}")
    assert not list(run.glob("plot-*")) and not done.stdout


def test_every_point_carries_its_interval_and_plain_tick_labels(tmp_path: Path) -> None:
    """An error bar per point, time and bandwidth alike (one run or several); the
    bandwidth axis's labels all plain numbers (not `6e-01` beside `0.1`)."""
    small = {"collectives": ("all_gather",), "hiddens": (1024,)}
    a = read_run(write_run(tmp_path / "a", sweep_rows(**small), label="a"))
    b = read_run(write_run(tmp_path / "b", sweep_rows(**small, scale=0.01), label="b"))
    for runs in ([a], [a, b]):
        named = dict(figures(runs))
        for metric in ("time", "busbw"):
            figure = named[f"{AG}-H1024-{metric}"]
            ax = figure.axes[0]
            bars = [c for c in ax.collections if c.get_segments()]
            assert len(bars) == 2 * len(runs)  # list and tensor of each run
            assert all(len(bar.get_segments()) == 2 for bar in bars)  # T=8 and 64
            figure.canvas.draw()
            labels = [t.get_text() for t in [*ax.yaxis.get_ticklabels(),
                                              *ax.yaxis.get_ticklabels(minor=True)]]  # fmt: skip
            shown = [text for text in labels if text]
            assert shown and not any("e" in text for text in shown), shown
    first = dict(figures([a]))[f"{AG}-H1024-time"].axes[0].collections[0]  # the list form's
    listed = a.results[(a.results["variant"] == "list") & (a.results["hidden"] == 1024)]
    ends = sorted(tuple(sorted(seg[:, 1])) for seg in first.get_segments())
    expected = sorted(zip(listed["ci_low_us"], listed["ci_high_us"], strict=True))
    flat = [end for pair in ends for end in pair]  # pytest 9.2 compares flat sequences only
    assert flat == pytest.approx([end for pair in expected for end in pair])


def test_an_unstable_point_is_grey_in_the_heatmap(tmp_path: Path) -> None:
    """Its ratio is shown, in italics, on a neutral cell: no colour claims a verdict."""
    rows = []
    for (tokens, hidden), speedup in SPEEDUPS.items():
        if hidden != 1024:
            continue
        for variant in ("list", "tensor"):
            median = tokens * hidden / 50 * (speedup if variant == "list" else 1.0)
            spread = 0.5 if tokens == 8 else 0.01  # T=8 scatters: unstable
            rows.append(({**key("all_gather", variant, tokens), "hidden": hidden},
                         samples_around(median, spread=spread, seed=3)))  # fmt: skip
    run = read_run(write_run(tmp_path / "run", rows))
    ax = dict(figures([run]))[f"{AG}-speedup"].axes[0]
    image = ax.images[0]
    rgba = image.to_rgba(image.get_array())
    grey = mcolors.to_rgba(UNSTABLE_GREY)
    assert tuple(rgba[0, 0]) == pytest.approx(grey, abs=0.01)  # T=8: unstable
    assert tuple(rgba[1, 0]) != pytest.approx(grey, abs=0.01)  # T=64: a tie, coloured
    styles = {t.get_text(): t.get_fontstyle() for t in ax.texts}
    assert list(styles.values()).count("italic") == 1
