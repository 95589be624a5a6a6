"""End to end: the real CLI in subprocesses, on real gloo worlds, writing real files."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from cli_helpers import commbench, tiny_config, torchrun
from trackerschemas import BMF_SCHEMA, GITHUB_BENCHMARK_SCHEMA

from commbench.phases import PHASES
from commbench.results import RANK_SAMPLE_COLUMNS, RESULT_COLUMNS, SAMPLE_COLUMNS

ELEMENT = {"bfloat16": 2, "float32": 4}
BUS = {"all_gather": lambda n: (n - 1) / n, "reduce_scatter": lambda n: (n - 1) / n}
BUS["all_reduce"] = lambda n: 2 * (n - 1) / n


def assert_consistent_run(run: Path, world_size: int, rounds: int = 1) -> pd.DataFrame:
    results = pd.read_csv(run / "results.csv")
    samples = pd.read_csv(run / "samples.csv")
    ranks = pd.read_csv(run / "rank_samples.csv")
    meta = json.loads((run / "meta.json").read_text())
    assert list(results.columns) == RESULT_COLUMNS
    assert list(samples.columns) == SAMPLE_COLUMNS
    assert list(ranks.columns) == RANK_SAMPLE_COLUMNS

    assert (results["check"] == "pass").all()
    assert results["temp_mem_bytes"].isna().all()  # CPU reports no allocator peak: empty
    assert (results["world_size"] == world_size).all()
    assert (results["dp"] * results["tp"] == world_size).all()
    assert set(results["tp"]) == {n for n in range(2, world_size + 1) if world_size % n == 0}
    expected_rows = 2 * 2 * len(set(results["tp"])) * 5  # tokens x dtypes x splits x variants
    assert len(results) == expected_rows

    for row in results.itertuples():
        assert row.bytes == row.tokens * row.hidden * ELEMENT[row.dtype]
        algbw = row.bytes / (row.time_us * 1e-6) / 1e9
        assert row.algbw_gbps == pytest.approx(algbw, rel=1e-9)
        assert row.busbw_gbps == pytest.approx(algbw * BUS[row.collective](row.tp), rel=1e-9)
        pad = math.ceil(row.tokens / row.tp) * row.tp
        is_padded = row.variant == "tensor" and row.collective != "all_reduce"
        assert row.padded_tokens == (pad if is_padded else row.tokens)
        assert row.time_us_min <= row.time_us_p10 <= row.time_us <= row.time_us_p90
        assert 3 * rounds <= row.samples <= 4 * rounds and row.iters >= 1
        assert row.rounds == rounds
        assert row.stop in {"ci", "max_samples", "max_seconds"}
        mine = samples[
            (samples["collective"] == row.collective)
            & (samples["variant"] == row.variant)
            & (samples["dtype"] == row.dtype)
            & (samples["tokens"] == row.tokens)
            & (samples["tp"] == row.tp)
        ]
        assert len(mine) == row.samples
        assert sorted(set(mine["round"])) == list(range(rounds))
        assert mine["time_us"].median() == pytest.approx(row.time_us)
        assert mine["time_us"].min() == pytest.approx(row.time_us_min)

    per_sample_max = ranks.groupby([*SAMPLE_COLUMNS[:9], "sample"])["time_us"].max()
    merged = samples.set_index([*SAMPLE_COLUMNS[:9], "sample"])["time_us"]
    assert per_sample_max.sort_index().to_numpy() == pytest.approx(merged.sort_index().to_numpy())
    assert len(ranks) == len(samples) * world_size

    assert meta["world_size"] == world_size and meta["backend"] == "gloo"
    assert meta["versions"]["torch"] and meta["versions"]["commbench"]
    assert meta["finished"] and meta["started"]
    assert meta["config"]["tokens"] == [1, 8]
    assert meta["apis"]["all_gather.list"] == ["all_gather", "broadcast"]  # gloo: uneven
    assert meta["apis"]["all_gather.tensor"] in (["all_gather_single"], ["all_gather_into_tensor"])
    assert len(meta["hostnames"]) == world_size
    assert all(not k.startswith(("HOME", "PATH")) for k in meta["env"])
    assert (results["layout"] == "contiguous").all() and not results["cuda_graph"].any()

    phases = meta["phases"]  # rank 0's time per phase: they add up to the points' time
    assert set(phases) == {*PHASES, "other", "steps"}
    assert phases["samples"] > 0 and phases["capture"] == 0
    assert all(seconds >= 0 for seconds in phases.values())  # disjoint phases: none counted twice
    assert sum(phases[phase] for phase in PHASES) + phases["other"] == pytest.approx(
        phases["steps"]
    )
    memory = meta["memory"]
    assert all(len(values) == world_size for values in memory.values())
    assert memory["device_peak_bytes"] == [None] * world_size  # CPU: none reported, none made up
    assert 0 < max(memory["arena_bytes"]) < 4096  # the tiny sweep's largest point, once
    assert min(memory["rss_peak_bytes"]) > min(memory["rss_start_bytes"]) > 0
    return results


@pytest.mark.dist
def test_sweep_with_nproc_writes_consistent_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = commbench(
        "sweep",
        "--nproc",
        "2",
        "--config",
        str(tiny_config(tmp_path)),
        "--out",
        str(out),
        "--label",
        "local",
        "--profile-phases",
    )
    assert done.returncode == 0, done.stderr
    assert_consistent_run(out, 2)
    assert "Time per phase (rank 0)" in done.stdout
    assert "all_gather  tp=2 dp=1" in done.stdout
    assert "Summary (local, gloo, world 2)" in done.stdout
    assert "geometric-mean speedup" in done.stdout and "Recommendation:" in done.stdout

    report = commbench("report", str(out), "--markdown", str(out / "report.md"))
    assert report.returncode == 0, report.stderr
    assert "Summary (local, gloo, world 2)" in report.stdout
    assert_issue_ready(out)
    for fmt, schema in (("bencher", BMF_SCHEMA), ("github", GITHUB_BENCHMARK_SCHEMA)):
        exported = commbench("export", str(out), "--format", fmt)
        assert exported.returncode == 0 and exported.stderr == "", exported.stderr
        entries = json.loads(exported.stdout)
        jsonschema.validate(entries, schema, cls=jsonschema.Draft7Validator)
        assert len(entries) == len(pd.read_csv(out / "results.csv"))  # every row measured


def assert_issue_ready(run: Path) -> None:
    """report --markdown of a real run: the summary in words, the environment
    a maintainer asks for, every measured row."""
    text = (run / "report.md").read_text()
    meta = json.loads((run / "meta.json").read_text())
    results = pd.read_csv(run / "results.csv")
    assert text.startswith("## commbench run `local`")
    for heading in ("### Summary", "### Environment", "### List vs tensor", "### Every measured"):
        assert heading in text
    for collective in ("all_gather", "reduce_scatter"):  # the verdicts, in words
        assert f"- {collective}: the tensor form is faster beyond noise in" in text
    versions = meta["versions"]
    assert f"| torch | `{versions['torch']}` |" in text
    assert "| NCCL built (torch) |" in text and "| NCCL loaded (runtime) |" in text
    assert f"| world size, nodes | 2, {meta['nodes']} |" in text
    assert "| command | `commbench sweep --config" in text  # as the workers ran it
    rows = [line for line in text.split("### Every measured row")[1].splitlines()
            if line.startswith("| ") and not line.startswith("| variant")]  # fmt: skip
    assert len(rows) == len(results)


@pytest.mark.dist
def test_torchrun_launch_with_four_ranks(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = str(tiny_config(tmp_path))
    done = torchrun(4, "sweep", "--config", config, "--out", str(out), "--rounds", "2")
    assert done.returncode == 0, done.stderr
    results = assert_consistent_run(out, 4, rounds=2)
    assert set(zip(results["tp"], results["dp"], strict=True)) == {(2, 2), (4, 1)}
    assert done.stdout.count("Summary (") == 1  # only rank 0 prints


@pytest.mark.dist
def test_two_real_runs_gated_against_each_other(tmp_path: Path) -> None:
    config = str(tiny_config(tmp_path))
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        done = commbench("sweep", "--nproc", "2", "--config", config, "--out", str(run))
        assert done.returncode == 0, done.stderr
    real = commbench("gate", str(runs[0]), str(runs[1]), "--json", str(tmp_path / "g.json"))
    assert real.returncode in (0, 1), real.stderr  # a real A/B pair on a noisy machine
    verdict = json.loads((tmp_path / "g.json").read_text())
    assert verdict["exit_code"] == real.returncode
    assert sum(verdict["counts"].values()) == 20 and verdict["counts"]["missing"] == 0

    same = commbench("gate", str(runs[0]), str(runs[0]))
    assert same.returncode == 0, same.stdout
    assert "20 row(s) unchanged" in same.stdout

    def slowed(factor: float) -> Path:  # run b, `factor` times slower in every figure
        slow = tmp_path / f"slow-{factor:g}"
        shutil.copytree(runs[1], slow)
        samples = pd.read_csv(slow / "samples.csv")
        samples["time_us"] *= factor
        samples.to_csv(slow / "samples.csv", index=False)
        results = pd.read_csv(slow / "results.csv")
        times = [c for c in results.columns if c.startswith(("time_us", "ci_"))]
        results[times] *= factor
        results.to_csv(slow / "results.csv", index=False)
        return slow

    # Against a history of two runs, 2 gloo ranks drift so much (README, "Gate power") that
    # 3x is below what the gate can see; it passes and says so: its detectable shift is larger.
    history = [str(runs[0]), str(runs[1])]
    report = tmp_path / "slow.json"
    unseen = commbench("gate", *history, str(slowed(3)), "--json", str(report))
    assert unseen.returncode == 0, unseen.stdout
    assert all(a["detectable"] > 3 for a in json.loads(report.read_text())["aggregates"])
    caught = commbench("gate", *history, str(slowed(100)))
    assert caught.returncode == 1, caught.stdout

    slow = slowed(50)
    compared = commbench(
        "compare", str(runs[0]), str(runs[1]), str(slow), "--csv", str(tmp_path / "c.csv")
    )
    assert compared.returncode == 0, compared.stderr
    table = pd.read_csv(tmp_path / "c.csv")
    assert len(table) == 20
    assert table[f"{slow.name} ratio"].to_numpy() == pytest.approx(50 * table["b ratio"].to_numpy())


@pytest.mark.dist
def test_logits_gather_with_an_odd_vocab(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(out),
        "--collectives", "logits_gather", "--vocab", "24,25", "--tokens", "3",
        "--dtypes", "bfloat16",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the list path of an odd vocab: see below
    rows = pd.read_csv(out / "results.csv", dtype={"note": str}).fillna({"note": ""})
    assert (rows["hidden"] == 0).all()
    shapes = {(r.variant, r.vocab): (r.padded_vocab, r.bytes) for r in rows.itertuples()}
    assert shapes == {
        ("list", 24): (24, 3 * 24 * 2),
        ("tensor", 24): (24, 3 * 24 * 2),
        ("list", 25): (25, 3 * 25 * 2),
        ("tensor", 25): (26, 3 * 25 * 2),  # the padded what-if; bytes count the real vocab
    }
    odd = rows[(rows["vocab"] == 25)].set_index("variant")
    assert odd.loc["list", "api"] == "broadcast"  # gloo: the uneven list gather's fallback
    assert "padded what-if" in odd.loc["tensor", "note"]
    # ProcessGroupNCCL's raw-byte broadcasts scramble SGLang's transposed views for T > 1:
    # the row says so and is measured all the same; every other row is exact
    assert odd.loc["list", "check"] == "fail" and "_broadcast_oop" in odd.loc["list", "note"]
    assert odd.loc["list", "samples"] > 0
    assert (
        rows.drop(rows.index[(rows["vocab"] == 25) & (rows["variant"] == "list")])["check"]
        == "pass"
    ).all()
    assert "fail: logits_gather/list tp=2 dp=1 T=3 V=25" in done.stdout
