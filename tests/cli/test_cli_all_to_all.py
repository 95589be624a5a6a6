"""MoE all_to_all end to end: the real CLI, real gloo worlds, and every consumer of the rows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from support.cli import EXPERTS, HIDDEN_MOE, TOPK, commbench, commbench_here, tiny_config
from support.runfixtures import slowed_copy

from commbench.routing import route
from commbench.rundir.schema import RESULT_COLUMNS


def test_the_done_when_sweep_and_its_consumers(
    two_node_run: tuple[Path, list[subprocess.CompletedProcess]], tmp_path: Path
) -> None:
    """The issue's command (with the tiny timing budget), on the suite's world of 4: 24
    exact rows, padded bytes never below the routed ones and growing with skew; then
    report, plot, compare and gate."""
    out, nodes = two_node_run
    assert [node.returncode for node in nodes] == [0, 0], [node.stdout for node in nodes]
    assert sum(node.stdout.count("Summary (") for node in nodes) == 1  # only rank 0 prints
    rows = pd.read_csv(out / "results.csv", dtype={"note": str}).fillna({"note": ""})
    assert list(rows.columns) == RESULT_COLUMNS and len(rows) == 24
    assert set(zip(rows["tp"], rows["dp"], strict=True)) == {(2, 2), (4, 1)}
    assert (rows["world_size"] == 4).all()
    assert (rows["check"] == "pass").all()
    assert (rows["padded_bytes"] >= rows["routed_bytes"]).all()
    for (tp, tokens), pair in rows.groupby(["tp", "tokens"]):
        by_skew = pair.groupby("skew")["padded_bytes"].first()
        assert by_skew[1.2] >= by_skew[0.0]
        routing = route(tokens, tp, EXPERTS, TOPK, 1.2)  # the row's figures are the routing's
        skewed = pair[pair["skew"] == 1.2].iloc[0]
        assert skewed["routed_bytes"] == routing.routed_rows * HIDDEN_MOE * 2
        assert skewed["bytes"] == pytest.approx(skewed["routed_bytes"] / tp)
        assert skewed["imbalance"] == pytest.approx(routing.imbalance)
    busbw = rows["algbw_gbps"] * (rows["tp"] - 1) / rows["tp"]
    assert rows["busbw_gbps"].to_numpy() == pytest.approx(busbw.to_numpy())
    apis = rows.groupby("variant")["api"].agg(set).to_dict()
    assert apis == {"list": {"batch_isend_irecv"}, "tensor": {"all_to_all_single"},
                    "padded": {"all_to_all_single"}}  # fmt: skip
    assert "gloo refuses an uneven list all_to_all" in rows.loc[0, "note"]

    summary = commbench_here("report", str(out))  # in this process: the reading commands
    assert summary.returncode == 0, summary.stderr
    assert "all_to_all  tp=4 dp=1  bfloat16 H=256 E=8 k=2 s=1.2" in summary.stdout
    assert "padding to capacity, all_to_all tp=2 dp=2 bfloat16 E=8 k=2" in summary.stdout

    plots = commbench_here("plot", str(out), "--out", str(tmp_path / "plots"))
    assert plots.returncode == 0, plots.stderr
    assert (
        tmp_path / "plots" / "plot-all_to_all-tp4-dp1-bfloat16-H256-E8-k2-s1.2-time.png"
    ).exists()

    compared = commbench_here(
        "compare", str(out), str(out), "--labels", "a,b", "--csv", str(tmp_path / "c.csv")
    )
    assert compared.returncode == 0, compared.stderr
    assert len(pd.read_csv(tmp_path / "c.csv")) == 24  # the skews are rows of their own
    # one baseline: the gate cannot see the asked shift and says so (exit 4), never a pass
    again = slowed_copy(out, tmp_path / "again", 1.001)  # another run, not the same twice
    gated = commbench_here("gate", str(out), str(again), "--json", str(tmp_path / "g.json"))
    assert gated.returncode == 4, gated.stdout
    verdict = json.loads((tmp_path / "g.json").read_text())
    assert verdict["counts"]["missing"] == 0 and verdict["counts"]["unchanged"] == 24


def test_combine_is_its_own_collective(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(tiny_config(tmp_path)), "--out", str(out),
        "--collectives", "all_to_all,all_to_all_combine", "--variants", "tensor,padded",
        "--tokens", "13", "--dtypes", "float32", "--experts", "4", "--topk", "1", "--skew", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out / "results.csv").set_index(["collective", "variant"])
    assert (rows["check"] == "pass").all() and len(rows) == 4
    same = ["bytes", "routed_bytes", "padded_bytes", "imbalance"]  # the matrix, transposed
    assert rows.loc["all_to_all", same].equals(rows.loc["all_to_all_combine", same])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "experts: all_to_all needs a MoE routing (--experts, --topk, --skew or [moe])"),
        (["--experts", "6", "--topk", "2", "--tp", "4"], "experts: 6 is not divisible by tp 4"),
        (["--experts", "8", "--topk", "9"], "topk: 9 is more than the 8 experts"),
        (["--experts", "8"], "moe.topk: Field required"),
        (["--experts", "8", "--topk", "2", "--skew", "-1"], "--skew: Input should be greater"),
    ],
)
def test_bad_routing_is_one_line_and_exit_2(flags: list[str], message: str) -> None:
    done = commbench_here("sweep", "--nproc", "4", "--collectives", "all_to_all", *flags)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr
