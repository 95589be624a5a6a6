"""Two torchrun 'nodes' on loopback join one world through a c10d rendezvous."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

POINTS_PER_SPLIT = 12  # the MoE sweep: 2 tokens x 3 variants x 2 skews


def test_two_nodes_make_one_world_of_four(
    two_node_run: tuple[Path, list[subprocess.CompletedProcess]],
) -> None:
    run, nodes = two_node_run
    assert [node.returncode for node in nodes] == [0, 0], [node.stdout for node in nodes]

    results = pd.read_csv(run / "results.csv")
    assert (results["world_size"] == 4).all() and (results["check"] == "pass").all()
    assert sorted(set(results["tp"])) == [2, 4]
    assert len(results) == 2 * POINTS_PER_SPLIT
    assert (results["layout"] == "strided").all()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["world_size"] == 4 and len(meta["hostnames"]) == 4
    assert meta["groups"] == {"2": [[0, 2], [1, 3]], "4": [[0, 1, 2, 3]]}
    assert sum("Files:" in node.stdout for node in nodes) == 1  # only rank 0 prints
