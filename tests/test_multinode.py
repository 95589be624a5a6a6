"""Two torchrun 'nodes' on loopback join one world through a c10d rendezvous."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import tiny_config
from distworld import free_port

POINTS_PER_SPLIT = 20  # the tiny sweep: 2 tokens x 2 dtypes x 5 variants


def start_node(port: int, args: list[str], log: Path) -> subprocess.Popen:
    """One node's agent: `torchrun --nnodes 2 --nproc-per-node 2` with a c10d rendezvous."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=2",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=commbench-two-nodes",
        "-m",
        "commbench",
        *args,
    ]
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.dist
def test_two_nodes_make_one_world_of_four(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["sweep", "--config", str(tiny_config(tmp_path)), "--out", str(run)]
    args += ["--group-layout", "strided"]
    port = free_port()
    nodes = [start_node(port, args, tmp_path / f"node{n}.log") for n in range(2)]
    try:
        for node in nodes:
            node.wait(timeout=300)
    finally:
        for node in nodes:
            node.kill()
    logs = [(tmp_path / f"node{n}.log").read_text() for n in range(2)]
    assert [node.returncode for node in nodes] == [0, 0], logs

    results = pd.read_csv(run / "results.csv")
    assert (results["world_size"] == 4).all() and (results["check"] == "pass").all()
    assert sorted(set(results["tp"])) == [2, 4]
    assert len(results) == 2 * POINTS_PER_SPLIT
    assert (results["layout"] == "strided").all()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["world_size"] == 4 and len(meta["hostnames"]) == 4
    assert meta["groups"] == {"2": [[0, 2], [1, 3]], "4": [[0, 1, 2, 3]]}
    assert sum("Files:" in log for log in logs) == 1  # only rank 0 prints its summary
