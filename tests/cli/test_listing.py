"""What asv, pytest-benchmark and hyperfine users expect before and after a sweep: a dry
run that says what would be measured, and a list of the runs in a results folder."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from support.cli import SharedRun, commbench_here
from support.runfixtures import key, samples_around, write_run

from commbench.rundir.lock import LOCK


def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(tmp_path: Path) -> None:
    before = sorted(tmp_path.rglob("*"))
    done = commbench_here(
        "sweep", "--dry-run", "--nproc", "4", "--tokens", "8,2048", "--hidden", "1024",
        "--dtypes", "float32", "--rounds", "3", "--min-sample-ms", "10", "--min-samples", "5",
        "--max-samples", "30", "--max-seconds", "1", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # tp 2 and 4; all_gather and reduce_scatter list + tensor, all_reduce tensor; 2 T
    points = 2 * 5 * 2
    assert f"{points} points on 4 ranks" in out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert len(rows) == points
    # bytes per rank: the full [T, H] float32 buffer
    assert any("2048" in row and "8.0 MiB" in row for row in rows)
    assert any("│    8 │" in row and "32.0 KiB" in row for row in rows)
    # 20 points x 3 rounds, each 5 samples of 10 ms (0.05 s) at the least, and at most
    # 30 samples of 10 ms (0.3 s, inside the 1 s budget): 3 s to 18 s
    assert "estimated sampling time: 3 s to 18 s (20 points x 3 round(s)" in out
    assert "Nothing was launched or written." in out
    assert sorted(tmp_path.rglob("*")) == before


def test_a_dry_run_of_a_resume_refuses_what_the_resume_would(local_run: SharedRun) -> None:
    """A resume refuses flags that contradict the run; its dry run must too."""
    same = commbench_here("sweep", "--resume", str(local_run.path), "--dry-run")
    assert same.returncode == 0, same.stderr
    other = commbench_here("sweep", "--resume", str(local_run.path), "--tokens", "99", "--dry-run")
    assert other.returncode == 2
    assert other.stderr.startswith(f"commbench: error: resume: '{local_run.path}': the run was")
    assert "tokens" in other.stderr


def test_dry_run_refuses_what_the_sweep_would(tmp_path: Path) -> None:
    done = commbench_here("sweep", "--dry-run", "--nproc", "4", "--tp", "3", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "commbench: error: tp: 3 does not divide the world size 4\n"


def test_runs_lists_each_run_and_whether_it_is_complete(tmp_path: Path) -> None:
    """In the state every reader finds it in: a finished run that lacks its last row is
    damaged (the gate refuses it), not complete."""
    rows = [(key(variant=v), samples_around(100, 8)) for v in ("list", "tensor")]
    started = "2026-01-02T03:04:05+00:00"
    write_run(tmp_path / "a-done", rows, label="done", points=2, started=started,
              finished="2026-01-02T03:05:00+00:00")  # fmt: skip
    short = write_run(tmp_path / "e-short", rows, label="short", points=2, started=started,
                      finished="2026-01-02T03:05:00+00:00")  # fmt: skip
    lines = (short / "results.csv").read_text().splitlines(keepends=True)
    (short / "results.csv").write_text("".join(lines[:-1]))  # the last row lost, lines whole
    writing = write_run(tmp_path / "f-writing", rows[:1], points=2, started=started)
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "since": started}
    (writing / LOCK).write_text(json.dumps(lock))
    write_run(tmp_path / "nested" / "b-cut", rows[:1], label="cut", points=2,
              started="2026-01-03T00:00:00+00:00")  # fmt: skip
    write_run(tmp_path / "c-stopped", rows[:1], label="stopped", points=2, started=started,
              stopped={"at": started, "reason": "interrupted (SIGINT)"})  # fmt: skip
    (tmp_path / "d-broken").mkdir()
    (tmp_path / "d-broken" / "meta.json").write_text("{not json")
    (tmp_path / "not-a-run").mkdir()
    done = commbench_here("runs", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines()
             if line.startswith("│ ")}  # fmt: skip
    assert set(lines) == {
        "a-done", "nested/b-cut", "c-stopped", "d-broken", "e-short", "f-writing"
    }  # fmt: skip
    cells = [cell.strip() for cell in lines["a-done"].split("│")[1:-1]]
    assert cells == ["a-done", "complete", "done", "2026-01-02 03:04:05", "gloo", "4", "2/2"]
    cut = lines["nested/b-cut"]
    assert f"unfinished: `commbench sweep --resume {tmp_path / 'nested' / 'b-cut'}`" in cut
    assert "1/2" in cut
    assert "stopped: interrupted (SIGINT); unfinished" in lines["c-stopped"]
    assert "unreadable:" in lines["d-broken"]
    assert "damaged: " in lines["e-short"] and "holds 1 of the 2 points" in lines["e-short"]
    gate = commbench_here("gate", str(tmp_path / "a-done"), str(short))
    assert gate.returncode == 2 and "holds 1 of the 2 points" in gate.stderr  # the same word
    assert f"being written: by pid {os.getpid()} on" in lines["f-writing"]


def test_runs_of_a_folder_that_is_not_there(tmp_path: Path) -> None:
    done = commbench_here("runs", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "is not a directory" in done.stderr


def test_report_json_on_standard_output(tmp_path: Path) -> None:
    rows = [(key(variant=v, tokens=t), samples_around(100 if v == "list" else 50, 12))
            for v in ("list", "tensor") for t in (8, 64)]  # fmt: skip
    run = write_run(tmp_path / "run", rows, label="mine")
    done = commbench_here("report", str(run), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["label"] == "mine" and len(data["results"]) == 4
    assert [row["verdict"] for row in data["comparison"]] == ["win", "win"]
    assert data["summary"][0].endswith("Recommendation: use the tensor form.")
    assert data["meta"]["backend"] == "gloo"


def test_shipped_configs_are_listed_and_named_from_anywhere(tmp_path: Path) -> None:
    """A pip install holds the configs in the package, not in ./configs: `--config NAME`
    names a shipped one wherever no file of that name is, and `commbench configs` lists
    them. A file of that name wins."""
    from commbench.config.settings import shipped_configs

    listed = commbench_here("configs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert all(f"│ {name} " in listed.stdout for name in shipped_configs())
    assert {"ci", "default", "odd-vocab"} <= set(shipped_configs())
    plans = {}
    for given in ("ci", "ci.toml"):
        done = commbench_here("sweep", "--dry-run", "--nproc", "4", "--config", given, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        plans[given] = done.stdout
    assert plans["ci"] == plans["ci.toml"] and "30 points on 4 ranks" in plans["ci"]
    (tmp_path / "ci").write_text("tokens = [8]\nhidden = [64]\ntp = [2]\n")
    own = commbench_here("sweep", "--dry-run", "--nproc", "4", "--config", "ci", cwd=tmp_path)
    assert own.returncode == 0 and "points on 4 ranks" in own.stdout and own.stdout != plans["ci"]
    missing = commbench_here("sweep", "--dry-run", "--config", "cj", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("commbench: error: config: no file 'cj', nor a shipped")
    assert "`commbench configs` lists them" in missing.stderr
    assert commbench_here("sweep", "--dry-run", "--config", "sub/ci", cwd=tmp_path).returncode == 2
