"""`commbench history page` in a real headless Chromium: one self-contained file that loads
offline without a console message, whose drawn points are the history's runs at the
levels they were made at (read back from the rendered DOM)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.cli import commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.analysis.gate.history import read_ledger

ROWS = [key(backend="nccl", collective=c, tokens=t) for c in ("all_gather", "reduce_scatter")
        for t in (1, 2)]  # fmt: skip
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # Debian's, Ubuntu's, GitHub's


def chromium() -> str:
    """A headless Chromium: skipped where none is installed, but not under CI (.ci/run
    installs Debian's: CI skips nothing)."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI skips nothing: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return found


def _run(tmp_path: Path, name: str, level: float, hour: int) -> Path:
    start = datetime(2027, 1, 1, tzinfo=timezone.utc) + timedelta(hours=hour)
    rows = [(k, samples_around(100 * level * (1 + 0.002 * ((hour * 7) % 3 - 1)), 12, 0.001, j))
            for j, k in enumerate(ROWS)]  # fmt: skip
    return write_run(tmp_path / "runs" / name, rows, backend="nccl", started=start.isoformat(),
                     hostnames=["node-a"], label=name)  # fmt: skip


def _history(tmp_path: Path) -> Path:
    """Five pinned runs, eight at the same level, four 5% slower; one quarantined."""
    history = tmp_path / "history"
    seed = [_run(tmp_path, f"seed-{i}", 1.0, i) for i in range(5)]
    for run in seed:
        commbench_here("history", "add", str(history), str(run))
    commbench_here("history", "pin", str(history), *map(str, seed), "--reason", "seed")
    for i, level in enumerate([1.0] * 8 + [1.05] * 4):
        run = _run(tmp_path, f"h-{i}", level, 5 + i)
        assert commbench_here("history", "add", str(history), str(run)).returncode == 0
    from commbench.analysis.gate.history import quarantine

    quarantine(history, [_run(tmp_path, "odd", 1.3, 30)], "an alarm its rerun did not confirm")
    return history


class Points(HTMLParser):
    """Every chart's circles, as the browser left them: chart -> [(run, ratio, state)]."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, list[tuple[str, float, str]]] = {}
        self.steps: dict[str, list[str]] = {}
        self._chart = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self._chart = found.get("data-chart") or ""
            self.charts.setdefault(self._chart, [])
            self.steps.setdefault(self._chart, [])
        elif tag == "circle" and "data-run" in found:
            point = (found["data-run"], float(found["data-ratio"]), found["data-state"])
            self.charts[self._chart].append(point)
        elif tag == "line" and "data-step" in found:
            self.steps[self._chart].append(found["data-step"])


def test_the_page_loads_offline_and_draws_every_run(tmp_path: Path) -> None:
    browser = chromium()
    history = _history(tmp_path)
    page = tmp_path / "page.html"
    done = commbench_here("history", "page", str(history), "--out", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    # self-contained: nothing to fetch (the SVG namespace is a name, not a request)
    assert not re.search(r"""(src|href)=["']?https?:""", text) and "@import" not in text
    rendered = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    console = [line for line in rendered.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    points = Points()
    points.feed(rendered.stdout)
    ledger = read_ledger(history)
    names = {entry.name for entry in ledger.runs}
    overall = points.charts["overall"]
    assert {run for run, _, _ in overall} == names and len(overall) == len(names) == 18
    states = {run: state for run, _, state in overall}
    assert sorted(s for s in states.values()) == ["pinned"] * 5 + ["quarantined"] + ["window"] * 12
    ratios = {run: ratio for run, ratio, _ in overall}
    pinned = [ratios[name] for name in ledger.pin.names]
    assert sum(pinned) / 5 == pytest.approx(1.0, abs=1e-6)  # drawn against the pinned level
    slower = [ratios[run] for run in names if run.endswith(("h-8", "h-9", "h-10", "h-11"))]
    assert slower and all(r == pytest.approx(1.05, abs=0.01) for r in slower)
    odd = next(ratio for run, ratio, state in overall if state == "quarantined")
    assert odd == pytest.approx(1.3, abs=0.02)
    assert [name.rsplit("-", 2)[-2:] for name in points.steps["overall"]] == [["h", "8"]]
    assert set(points.charts) >= {"overall", "all_gather/tensor", "reduce_scatter/tensor"}
    rows = [chart for chart in points.charts if chart.startswith("all_gather/tensor ")]
    assert len(rows) == 2 and all(len(points.charts[r]) == 18 for r in rows)  # rows on demand
