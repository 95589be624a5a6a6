"""A standard output closed early (`commbench ... | head`) loses only text: the exit code,
every file and the workers are the command's own. Real processes whose stdout pipe has no
reader left."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import commbench, commbench_unread, tiny_config
from support.runfixtures import key, samples_around, write_run

from commbench.errors import ExitCode


def test_the_gate_keeps_its_verdict_and_writes_its_reports(tmp_path: Path) -> None:
    rows = [(key(tokens=t), samples_around(100, 8)) for t in (8, 64)]
    slower = [(key(tokens=t), samples_around(101, 8)) for t in (8, 64)]
    base, now = write_run(tmp_path / "a", rows), write_run(tmp_path / "b", slower)
    read = commbench("gate", str(base), str(now), "--junit", str(tmp_path / "read.xml"))
    assert read.returncode == ExitCode.INSUFFICIENT and read.stdout  # one gloo baseline
    unread = commbench_unread(
        "gate", str(base), str(now), "--junit", str(tmp_path / "gate.xml"),
        "--markdown", str(tmp_path / "gate.md"),
    )  # fmt: skip
    assert unread.returncode == read.returncode, unread.stderr
    assert "Traceback" not in unread.stderr and "Broken pipe" not in unread.stderr
    assert (tmp_path / "gate.xml").read_text() == (tmp_path / "read.xml").read_text()
    assert (tmp_path / "gate.md").exists()


def test_a_sweep_runs_to_the_end_on_every_rank(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = commbench_unread(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(run)
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "rank" not in done.stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and not meta.get("stopped")
    assert len((run / "results.csv").read_text().splitlines()) == 1 + meta["points"]
