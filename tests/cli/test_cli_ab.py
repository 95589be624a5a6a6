"""`commbench ab` end to end: real interleaved launches of a tiny gloo sweep on 2 ranks,
real run directories, the real CLI. Each launch costs seconds, so few experiments, each
read for several things. The slowdown is real: tests/support/hooks's sitecustomize
makes the ranks' all_reduce calls take a fixed multiple longer."""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from support.cli import ROOT, commbench, commbench_here
from support.paths import HOOKS

import commbench as api
from commbench.ab.arms import Arm, check_arms, nccl_variables, parse_flag, read_arms_file
from commbench.ab.experiment import Experiment
from commbench.ab.launches import block_order, foreign_difference
from commbench.analysis.ab import Design, Pair, launch_times, replay
from commbench.rundir.meta import RunMeta, Versions
from commbench.rundir.schema import KEY_COLUMNS

SWEEP = [
    "--nproc", "2", "--backend", "gloo", "--collectives", "all_gather,all_reduce",
    "--variants", "list,tensor", "--tokens", "8", "--hidden", "32", "--dtypes", "float32",
    "--tp", "2", "--warmup", "1", "--min-samples", "3", "--max-samples", "4",
    "--max-iters", "3", "--max-seconds", "0.2", "--min-sample-ms", "1000",
]  # fmt: skip
PLANTED = f"PYTHONPATH={HOOKS}{os.pathsep}{ROOT},COMMBENCH_TEST_SLOWDOWN"
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
    """base, slow, same: 4 pairs each, one look."""
    where = tmp_path_factory.mktemp("ab")
    out = where / "exp"
    args = ["ab", "--arm", BASE, "--arm", SLOW, "--arm", SAME, *SWEEP, "--out", str(out)]
    args += ["--min-pairs", "4", "--max-pairs", "4", "--band", "0.5", "--seed", "5"]
    done = commbench(*args, "--markdown", str(where / "ab.md"), timeout=TIMEOUT)
    return done, out


def test_a_planted_slowdown_is_a_regression(three_arms) -> None:
    done, out = three_arms
    assert done.returncode == 1, done.stdout + done.stderr
    result = state(out)["result"]
    slow = {(e["kind"], e["name"]): e for e in result["estimates"] if e["arm"] == "slow"}
    assert slow[("collective", "all_reduce")]["decision"] == "slower"
    assert ("contrast", "all_reduce") in slow  # judged too: against the rest of the launch
    assert "an arm is slower than the reference" in done.stdout
    assert "  where: " in done.stdout and "rows that differ most" in done.stdout
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
    for block in range(4):
        ran = [x["arm"] for x in launches if x["block"] == block and x["status"] == "ok"]
        assert ran == block_order(arms, 5, block)
    assert block_order(arms, 5, 1) == block_order(arms, 5, 0)[::-1]
    by_index = {x["index"]: x for x in launches}
    assert len(got["pairs"]) == 8
    for pair in got["pairs"]:
        assert by_index[pair["reference"]]["arm"] == "base"
        assert by_index[pair["launch"]]["arm"] == pair["arm"]
        assert by_index[pair["reference"]]["block"] == by_index[pair["launch"]]["block"]
    for launch in launches:  # every launch an ordinary run directory
        assert len(api.load_run(out / launch["dir"]).results) == 3  # all_reduce: one variant


def test_intervals_match_a_direct_computation_on_the_runs(three_arms) -> None:
    """Both families from the launches' own results.csv: the absolute ratios (overall,
    each collective) and the contrasts (a collective against the rest), each at its
    one-sided bounds: the look's share of the family's half of alpha over 2 arms and the
    family's aggregates (3 absolute, 2 contrasts)."""
    _, out = three_arms
    got = state(out)
    design = Design(["base", "slow", "same"], 0.5, 4, 4)
    share = design.share(4, 0)
    assert got["result"]["alphas"]["absolute"] == pytest.approx(share / (2 * 3))
    assert got["result"]["alphas"]["contrast"] == pytest.approx(share / (2 * 2))
    dirs = {x["index"]: out / x["dir"] for x in got["launches"]}

    def times(index: int):
        results = api.load_run(dirs[index]).results
        return results.set_index(KEY_COLUMNS)["time_us"].sort_index()

    for arm in ("slow", "same"):
        pairs = [p for p in got["pairs"] if p["arm"] == arm]
        logs = np.array([np.log(times(p["launch"]) / times(p["reference"])) for p in pairs])
        collective = times(pairs[0]["reference"]).index.get_level_values("collective")
        gather, reduce = (logs[:, np.asarray(collective == c)].mean(axis=1)
                          for c in ("all_gather", "all_reduce"))  # fmt: skip
        groups = {
            ("overall", "overall"): (logs.mean(axis=1), share / 6),
            ("collective", "all_gather"): (gather, share / 6),
            ("collective", "all_reduce"): (reduce, share / 6),
            ("contrast", "all_gather"): (gather - reduce, share / 4),
            ("contrast", "all_reduce"): (reduce - gather, share / 4),
        }
        for (kind, name), (per_pair, alpha) in groups.items():
            (e,) = [e for e in got["result"]["estimates"]
                    if (e["arm"], e["kind"], e["name"]) == (arm, kind, name)]  # fmt: skip
            assert e["ratio"] == pytest.approx(math.exp(per_pair.mean()))
            assert e["ratios"] == pytest.approx(np.exp(per_pair).tolist())
            if e["by"] != "sequence":
                q = stats.t.ppf(1 - alpha, len(per_pair) - 1) * stats.sem(per_pair)
                bounds = (math.exp(per_pair.mean() - q), math.exp(per_pair.mean() + q))
                assert (e["low"], e["high"]) == pytest.approx(bounds)


def test_the_replay_of_an_experiments_launches_says_what_the_experiment_said(three_arms) -> None:
    """benchmarks/ab_power.py estimates error rates by replaying recorded launches through
    `replay`: on this experiment's own launches it must reach the same verdict with the
    same figures as the command did."""
    _, out = three_arms
    got = state(out)
    design = Design(["base", "slow", "same"], 0.5, 4, 4)
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
    """An arm faster at every collective than the reference: Ctrl-C during a launch, on a
    loaded machine (two processes spinning on the CPUs) and with SIGINT ignored as a
    shell's background job starts it (the experiment handles it all the same), then
    --resume: every absolute ratio decides faster, none slower (the contrasts of so tiny
    a sweep may stay undecided in 4 pairs: exit 0 or 4, never 1). The first launch after the
    warm-up is held until the test lets it go, so the signal surely lands inside it; no
    process of it is left once the experiment has exited."""
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
    args += ["--out", str(out), "--min-pairs", "4", "--max-pairs", "4", "--band", "0.05"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # the first launch after the warm-up is held
        launches = state(out)["launches"] if (out / "experiment.json").exists() else []
        if any(x["block"] == 0 and x["status"] == "running" for x in launches):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    try:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=300)
    finally:
        for burner in load:
            burner.kill()
    assert proc.returncode == 130
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True)
    assert left.stdout.split() == []  # the launcher and its ranks are gone too
    stopped = state(out)
    assert stopped["status"] == "interrupted"
    assert [x["status"] for x in stopped["launches"]] == ["ok", "interrupted"]
    hold.write_text("go")
    done = commbench("ab", "--resume", str(out), timeout=TIMEOUT)
    assert done.returncode in (0, 4), done.stdout + done.stderr
    resumed = state(out)
    assert resumed["launches"][:2] == [stopped["launches"][0], stopped["launches"][1]]
    assert [x["block"] for x in resumed["launches"][2:]] == [0, 0, 1, 1, 2, 2, 3, 3]
    estimates = resumed["result"]["estimates"]
    absolute = [e for e in estimates if e["kind"] in ("overall", "collective")]
    assert {e["decision"] for e in absolute} == {"faster"}
    assert "slower" not in {e["decision"] for e in estimates}


def test_a_budget_end_is_undecided_and_resume_continues_to_max_pairs(tmp_path: Path) -> None:
    """A budget end (the minutes) is undecided; --resume continues to the planned 2 pairs,
    still undecided within a 0.1% band; --resume --max-pairs 4 extends it past its plan:
    the same experiment, its looks past the horizon judged by the confidence sequence
    alone (no planned alpha left), never a fresh start."""
    out = tmp_path / "exp"
    args = ["ab", "--arm", "base", "--arm", "same:COMMBENCH_AB_NOTHING=1", *SWEEP]
    args += ["--out", str(out)]
    args += ["--min-pairs", "2", "--max-pairs", "2", "--band", "0.001"]
    done = commbench(*args, "--max-minutes", "0.01", timeout=TIMEOUT)  # the warm-up ends it
    assert done.returncode == 4, done.stdout + done.stderr
    assert [x["block"] for x in state(out)["launches"]] == [-1]
    # A 0.1% band is never equivalent in 2 pairs, so the experiment cannot end decided; it
    # is undecided, or slower where the suite's load truly made one arm's launches slower
    # (the data's verdict, not the mechanics under test).
    done = commbench("ab", "--resume", str(out), timeout=TIMEOUT)
    got = state(out)
    assert {done.returncode: got["status"]} in ({4: "undecided"}, {1: "regression"}), done.stdout
    assert got["result"]["pairs"] == 2
    assert done.returncode == 1 or "larger --max-pairs extends it" in done.stdout
    lower = commbench_here("ab", "--resume", str(out), "--max-pairs", "0")
    assert lower.returncode == 2 and "max-pairs: a resume may raise the budget" in lower.stderr
    done = commbench("ab", "--resume", str(out), "--max-pairs", "4", timeout=TIMEOUT)
    assert done.returncode in (1, 4), done.stdout + done.stderr
    got = state(out)
    assert got["design"]["max_pairs"] == 4 and got["design"]["planned_pairs"] == 2
    assert [made["pairs"] for made in got["looks"]] == [2, 4]
    assert got["result"]["pairs"] == 4 and got["result"]["alphas"]["absolute"] == 0


def test_an_arm_that_changes_more_than_it_says_is_not_comparable(tmp_path: Path) -> None:
    """The arm's ranks set NCCL_DEBUG themselves: the identity check names it."""
    sneaky = f"sneaky:PYTHONPATH={HOOKS}{os.pathsep}{ROOT},COMMBENCH_TEST_SETENV=NCCL_DEBUG=WARN"
    out = tmp_path / "exp"
    done = commbench(
        "ab", "--arm", "base", "--arm", sneaky, *SWEEP, "--out", str(out), timeout=TIMEOUT
    )
    assert done.returncode == 3, done.stdout + done.stderr
    got = state(out)
    assert got["status"] == "not comparable"
    assert "nccl_env" in got["reason"] and "NCCL_DEBUG" in got["reason"]
    assert "not comparable" in done.stdout


def test_a_launch_that_hangs_is_recorded_retried_once_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """Each launch also leaves a process of its own behind, outside its process group as
    ranks are when their launcher dies first: the experiment ends them both."""
    hangs = f"hangs:PYTHONPATH={HOOKS}{os.pathsep}{ROOT},COMMBENCH_TEST_HANG=1"
    out, straggler = tmp_path / "exp", f"import time; time.sleep(600)  # {tmp_path}"
    assert SWEEP[:2] == ["--nproc", "2"]  # said by the launcher template instead
    args = ["ab", "--arm", hangs, "--arm", "b:COMMBENCH_AB_NOTHING=1", *SWEEP[2:]]
    python = shlex.quote(sys.executable)
    args += ["--launcher", f"(setsid {python} -c '{straggler}' &); {{command}} --nproc 2"]
    done = commbench(*args, "--out", str(out), "--launch-timeout", "5", timeout=TIMEOUT)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout.split() == []
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
        (["--arm", "a", "--arm", "b:X=1", "--max-pairs", "9"], "max-pairs: must be even"),
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


def test_a_launch_that_ended_before_the_signal_is_kept(three_arms, tmp_path: Path) -> None:
    """An experiment stopped with its last launch marked running (the signal came as the
    launch ended): a resume keeps the launch whose directory holds a finished run, and
    marks interrupted one whose run is not whole."""
    _, out = three_arms
    copy = tmp_path / "exp"
    shutil.copytree(out, copy)
    got = state(copy)
    got["launches"][-1].update(status="running", reason="")
    got["launches"][-2].update(status="running", reason="")
    cut = copy / got["launches"][-2]["dir"] / "meta.json"
    meta = json.loads(cut.read_text())
    meta["finished"] = None
    cut.write_text(json.dumps(meta))
    (copy / "experiment.json").write_text(json.dumps(got))
    opened = Experiment.open(copy)
    assert opened.launches[-1]["status"] == "ok"
    assert opened.launches[-2]["status"] == "interrupted"


def test_a_python_arm_is_checked_from_a_neutral_folder_with_what_a_sweep_imports(
    tmp_path: Path,
) -> None:
    """An interpreter that imports commbench (here, from PYTHONPATH) but not torch or
    pydantic: refused before anything launches (exit 2), naming what it lacks."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    arm = f"b:python={bare / 'bin' / 'python'},PYTHONPATH={ROOT}"
    done = commbench_here("ab", "--arm", "a", "--arm", arm, *SWEEP, "--out", str(tmp_path / "x"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot run a sweep" in done.stderr and "No module named" in done.stderr
    assert not (tmp_path / "x").exists()


def test_an_nccl_variable_nccl_does_not_read_is_warned_about(capsys) -> None:
    check_arms([Arm("a"), Arm("b", {"NCCL_ALOG": "Ring", "NCCL_PROTO": "Simple"})])
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        "commbench: warning: arm b: NCCL_ALOG is not a variable NCCL reads (did you mean"
        " NCCL_ALGO?)"
    ]
    assert "NCCL_ALGO" in nccl_variables() and "NCCL_HOSTID" in nccl_variables()
