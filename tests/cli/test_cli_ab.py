"""`commbench ab` end to end: real interleaved launches of a tiny gloo sweep on 2 ranks,
real run directories, the real CLI. Each launch costs seconds, so few experiments, each
read for several things. The slowdown is real: tests/support/slowdown's sitecustomize
makes the ranks' all_reduce calls take a fixed multiple longer."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from support.cli import ROOT, commbench, commbench_here

import commbench as api
from commbench.ab.arms import Arm, parse_flag, read_arms_file
from commbench.ab.launches import block_order, foreign_difference
from commbench.analysis.ab import Design, Pair, launch_times, replay
from commbench.rundir.meta import RunMeta, Versions
from commbench.rundir.schema import KEY_COLUMNS

SLOWDOWN = ROOT / "tests" / "support" / "slowdown"
SWEEP = [
    "--nproc", "2", "--backend", "gloo", "--collectives", "all_gather,all_reduce",
    "--variants", "list,tensor", "--tokens", "8", "--hidden", "32", "--dtypes", "float32",
    "--tp", "2", "--warmup", "1", "--min-samples", "3", "--max-samples", "4",
    "--max-iters", "3", "--max-seconds", "0.2", "--min-sample-ms", "1000",
]  # fmt: skip
PLANTED = f"PYTHONPATH={SLOWDOWN}{os.pathsep}{ROOT},COMMBENCH_TEST_SLOWDOWN"
# Every arm but the plain ones waits a fixed time more in each timed call, so that a
# busy machine's noise (a tiny row's time varies several-fold between launches) is
# small beside the planted difference: all_reduce +10 ms in the reference, +60 ms in
# the slow arm, about 5x; +10 ms in `same` too, which changes nothing else.
BASE = f"base:{PLANTED}=all_reduce=+10"
SLOW = f"slow:{PLANTED}=all_reduce=+60"
SAME = f"same:{PLANTED}=all_reduce=+10,COMMBENCH_AB_NOTHING=1"
EVERY_CALL = "all_reduce:all_gather:all_gather_single"
TIMEOUT = 1800


def state(experiment: Path) -> dict:
    return json.loads((experiment / "experiment.json").read_text())


@pytest.fixture(scope="module")
def three_arms(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess, Path]:
    """base, slow, same: 3 pairs each, one look."""
    where = tmp_path_factory.mktemp("ab")
    out = where / "exp"
    args = ["ab", "--arm", BASE, "--arm", SLOW, "--arm", SAME, *SWEEP, "--out", str(out)]
    args += ["--min-pairs", "3", "--max-pairs", "3", "--band", "0.5", "--seed", "5"]
    done = commbench(*args, "--markdown", str(where / "ab.md"), timeout=TIMEOUT)
    return done, out


def test_a_planted_slowdown_is_a_regression(three_arms) -> None:
    done, out = three_arms
    assert done.returncode == 1, done.stdout + done.stderr
    result = state(out)["result"]
    slow = {e["name"]: e for e in result["estimates"] if e["arm"] == "slow" and e["kind"] != "row"}
    assert slow["all_reduce"]["decision"] == "slower"
    assert "an arm is slower than the reference" in done.stdout
    assert "all_reduce" in done.stdout and "rows that differ most" in done.stdout
    assert "the first launch only warmed the machine" in done.stdout
    report = (out.parent / "ab.md").read_text()
    assert "| slow | all_reduce |" in report and "slower" in report
    assert (out / "ab.png").stat().st_size > 0


def test_launches_follow_balanced_blocks_and_pair_within_them(three_arms) -> None:
    _, out = three_arms
    got = state(out)
    arms = ["base", "slow", "same"]
    launches = got["launches"]
    assert (launches[0]["arm"], launches[0]["block"], launches[0]["status"]) == ("base", -1, "ok")
    for block in range(3):
        ran = [x["arm"] for x in launches if x["block"] == block and x["status"] == "ok"]
        assert ran == block_order(arms, 5, block)
    assert block_order(arms, 5, 1) == block_order(arms, 5, 0)[::-1]
    by_index = {x["index"]: x for x in launches}
    assert len(got["pairs"]) == 6
    for pair in got["pairs"]:
        assert by_index[pair["reference"]]["arm"] == "base"
        assert by_index[pair["launch"]]["arm"] == pair["arm"]
        assert by_index[pair["reference"]]["block"] == by_index[pair["launch"]]["block"]
    for launch in launches:  # every launch an ordinary run directory
        assert len(api.load_run(out / launch["dir"]).results) == 3  # all_reduce: one variant


def test_intervals_match_a_direct_computation_on_the_runs(three_arms) -> None:
    _, out = three_arms
    got = state(out)
    confidence = 1 - 0.05 / (2 * 3 * 1)  # Bonferroni: 2 arms x 3 aggregates x 1 look
    assert got["result"]["confidence"] == pytest.approx(confidence)
    dirs = {x["index"]: out / x["dir"] for x in got["launches"]}

    def times(index: int):
        results = api.load_run(dirs[index]).results
        return results.set_index(KEY_COLUMNS)["time_us"].sort_index()

    for arm in ("slow", "same"):
        pairs = [p for p in got["pairs"] if p["arm"] == arm]
        logs = np.array([np.log(times(p["launch"]) / times(p["reference"])) for p in pairs])
        collective = times(pairs[0]["reference"]).index.get_level_values("collective")
        groups = {"overall": logs.mean(axis=1)}
        for name in ("all_gather", "all_reduce"):
            groups[name] = logs[:, np.asarray(collective == name)].mean(axis=1)
        for name, per_pair in groups.items():
            mean, sem = per_pair.mean(), stats.sem(per_pair)
            low, high = stats.t.interval(confidence, len(per_pair) - 1, loc=mean, scale=sem)
            (e,) = [e for e in got["result"]["estimates"] if e["arm"] == arm and e["name"] == name]
            assert e["ratio"] == pytest.approx(math.exp(mean))
            assert (e["low"], e["high"]) == pytest.approx((math.exp(low), math.exp(high)))
            assert e["ratios"] == pytest.approx(np.exp(per_pair).tolist())


def test_the_replay_of_an_experiments_launches_says_what_the_experiment_said(three_arms) -> None:
    """benchmarks/ab_power.py estimates error rates by replaying recorded launches through
    `replay`: on this experiment's own launches it must reach the same verdict with the
    same figures as the command did."""
    _, out = three_arms
    got = state(out)
    design = Design(["base", "slow", "same"], 0.5, 3, 3)
    times = {
        x["index"]: launch_times(api.load_run(out / x["dir"]).results)
        for x in got["launches"]
        if x["status"] == "ok"
    }
    blocks: dict[int, list[Pair]] = {}
    for p in got["pairs"]:
        blocks.setdefault(p["block"], []).append(Pair(**p))
    last, said = replay(times, [blocks[b] for b in sorted(blocks)], design)
    assert said == got["status"] == "regression"
    assert [e.record() for e in last.estimates] == got["result"][
        "estimates"
    ]  # JSON floats round-trip


def test_an_interrupted_experiment_resumes_and_decides(tmp_path: Path) -> None:
    """An arm faster at every collective than the reference: Ctrl-C during a launch, then
    --resume: every interval decides, none slower: exit 0. The first launch after the
    warm-up is held until the test lets it go, so the signal surely lands inside it."""
    out, hold = tmp_path / "exp", tmp_path / "hold"
    held = f"COMMBENCH_TEST_HOLD={hold}"
    slow, fast = (
        f"slow:{PLANTED}={EVERY_CALL}=+60,{held}",
        f"fast:{PLANTED}={EVERY_CALL}=+10,{held}",
    )
    args = [sys.executable, "-m", "commbench", "ab", "--arm", slow, "--arm", fast, *SWEEP]
    # A narrow band: "faster" needs only the interval's upper end below 1/1.05. The
    # planted ratio is about 0.2x, yet three pairs on a loaded machine once gave
    # all_reduce [0.079, 0.72], undecided against a 0.5 band's 0.667.
    args += ["--out", str(out), "--min-pairs", "3", "--max-pairs", "3", "--band", "0.05"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # the first launch after the warm-up is held
        launches = state(out)["launches"] if (out / "experiment.json").exists() else []
        if any(x["block"] == 0 and x["status"] == "running" for x in launches):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    assert proc.returncode == 130
    stopped = state(out)
    assert stopped["status"] == "interrupted"
    assert [x["status"] for x in stopped["launches"]] == ["ok", "interrupted"]
    hold.write_text("go")
    done = commbench("ab", "--resume", str(out), timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = state(out)
    assert resumed["launches"][:2] == [stopped["launches"][0], stopped["launches"][1]]
    assert [x["block"] for x in resumed["launches"][2:]] == [0, 0, 1, 1, 2, 2]
    aggregates = [e for e in resumed["result"]["estimates"] if e["kind"] != "row"]
    assert {e["decision"] for e in aggregates} == {"faster"}


def test_a_budget_end_is_undecided_and_resume_continues_to_max_pairs(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    args = ["ab", "--arm", "base", "--arm", "same:COMMBENCH_AB_NOTHING=1", *SWEEP]
    args += ["--out", str(out)]
    args += ["--min-pairs", "2", "--max-pairs", "2", "--band", "0.001"]
    done = commbench(*args, "--max-minutes", "0.01", timeout=TIMEOUT)  # the warm-up ends it
    assert done.returncode == 4, done.stdout + done.stderr
    assert [x["block"] for x in state(out)["launches"]] == [-1]
    done = commbench("ab", "--resume", str(out), timeout=TIMEOUT)
    assert done.returncode == 4, done.stdout + done.stderr  # a 0.1% band in 2 pairs: never
    got = state(out)
    assert got["status"] == "undecided" and got["result"]["pairs"] == 2
    assert "undecided" in done.stdout


def test_an_arm_that_changes_more_than_it_says_is_not_comparable(tmp_path: Path) -> None:
    """The arm's ranks set NCCL_DEBUG themselves: the identity check names it."""
    sneaky = f"sneaky:PYTHONPATH={SLOWDOWN}{os.pathsep}{ROOT},COMMBENCH_TEST_SETENV=NCCL_DEBUG=WARN"
    out = tmp_path / "exp"
    done = commbench(
        "ab", "--arm", "base", "--arm", sneaky, *SWEEP, "--out", str(out), timeout=TIMEOUT
    )
    assert done.returncode == 3, done.stdout + done.stderr
    got = state(out)
    assert got["status"] == "not comparable"
    assert "nccl_env" in got["reason"] and "NCCL_DEBUG" in got["reason"]
    assert "not comparable" in done.stdout


def test_a_launch_that_hangs_is_recorded_and_retried_once(tmp_path: Path) -> None:
    hangs = f"hangs:PYTHONPATH={SLOWDOWN}{os.pathsep}{ROOT},COMMBENCH_TEST_HANG=1"
    out = tmp_path / "exp"
    args = ["ab", "--arm", hangs, "--arm", "b:COMMBENCH_AB_NOTHING=1", *SWEEP]
    done = commbench(*args, "--out", str(out), "--launch-timeout", "5", timeout=TIMEOUT)
    assert done.returncode == 3, done.stdout + done.stderr
    got = state(out)
    assert got["status"] == "launch failed"
    assert [(x["attempt"], x["status"]) for x in got["launches"]] == [
        (1, "timeout"),
        (2, "timeout"),
    ]
    assert all(x["reason"] == "no end within 5 s" for x in got["launches"])
    assert "Launch launches/000-hangs: timeout: no end within 5 s" in done.stdout


def test_arms_from_flags_and_from_a_file_are_the_same_arms(tmp_path: Path) -> None:
    arms = tmp_path / "arms.toml"
    arms.write_text(
        '[[arm]]\nname = "base"\n[[arm]]\nname = "mixed"\nnccl-lib = "/x/libnccl.so.2"\n'
        'env = { NCCL_ALGO = "Ring,Tree", NCCL_PROTO = "Simple" }\n'
    )
    flags = [
        parse_flag("base"),
        parse_flag("mixed:NCCL_ALGO=Ring,Tree,nccl-lib=/x/libnccl.so.2,NCCL_PROTO=Simple"),
    ]
    assert read_arms_file(arms) == flags
    assert flags[1] == Arm(
        "mixed", {"NCCL_ALGO": "Ring,Tree", "NCCL_PROTO": "Simple"}, "/x/libnccl.so.2"
    )
    assert flags[1].changes(flags[0])["NCCL_ALGO"] == (None, "Ring,Tree")


def meta(env: dict | None = None, config_hash: str = "c", **versions: str) -> RunMeta:
    stack = Versions(**{"torch": "2.13", "nccl_runtime": "2.27", "nccl_path": "/a.so", **versions})
    return RunMeta(
        schema_version=4, backend="nccl", world_size=2, layout="contiguous", versions=stack,
        env={"NCCL_DEBUG": "WARN", **(env or {})}, config_hash=config_hash,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("launch", "own", "said"),
    [
        (meta({"NCCL_ALGO": "Ring"}), {"NCCL_ALGO": (None, "Ring")}, None),
        (meta({"NCCL_ALGO": "Ring"}), {}, "nccl_env"),
        (meta({"NCCL_PROTO": "LL"}), {"NCCL_ALGO": (None, "Ring")}, "nccl_env"),
        (meta(nccl_runtime="2.28", nccl_path="/b.so"), {"nccl-lib": (None, "/b.so")}, None),
        (meta(nccl_runtime="2.28"), {"NCCL_ALGO": (None, "Ring")}, "nccl_runtime"),
        (meta(nccl_path="/b.so"), {}, "nccl_path"),
        (meta(torch="2.14", nccl_path="/b.so"), {"python": (None, "/py")}, None),
        (meta(torch="2.14"), {"nccl-lib": (None, "/b.so")}, "torch"),
        (meta(config_hash="d"), {"python": (None, "/py")}, "config_hash"),
    ],
)
def test_a_launch_may_differ_from_the_reference_only_by_its_arm(launch, own, said) -> None:
    found = foreign_difference(meta(), launch, own)
    assert found == said if said is None else found.startswith(f"{said}:")


@pytest.mark.parametrize(
    ("arms", "said"),
    [
        (["--arm", "a", "--arm", "b"], "arm b: changes nothing against arm a"),
        (["--arm", "a", "--arm", "b:tokens=8"], "arm b: unknown key 'tokens'"),
        (["--arm", "a", "--arm", "a:X=1"], "arm: name 'a' given twice"),
        (["--arm", "a"], "needs a reference and at least one arm"),
        (["--arm", "a", "--arm", "b:LD_PRELOAD=/x.so"], "use nccl-lib=PATH"),
        (["--arm", "a", "--arm", "b:python=/no/such/python"], "python: no such interpreter"),
        (["--arm", "a", "--arm", "b:nccl-lib=/no/such/libnccl.so.2"], "does not exist"),
        (["--arm", "a", "--arm", "b:X=1", "--tokens", "eight"], "tokens"),
        (["--arm", "a", "--arm", "b:X=1", "--min-pairs", "1"], "min-pairs: Input should be"),
        (["--arm", "a", "--arm", "b:X=1", "--launcher", "srun"], "launcher: must hold {command}"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, arms: list[str], said: str) -> None:
    out = tmp_path / "exp"
    done = commbench_here("ab", *arms, "--out", str(out))
    assert done.returncode == 2
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_an_arms_file_and_a_resume_with_design_flags_are_checked(tmp_path: Path) -> None:
    arms = tmp_path / "arms.toml"
    arms.write_text('[[arm]]\nname = "a"\n[[arm]]\nname = "b"\nalgo = "Ring"\n')
    done = commbench_here("ab", "--arms", str(arms), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "unknown key 'algo'" in done.stderr
    done = commbench_here("ab", "--resume", str(tmp_path), "--band", "0.1")
    assert done.returncode == 2 and "resume: band cannot be given" in done.stderr
