"""meta.json as a sweep assembles it: every rank's versions, host and device, the
groups, the config and its hash, and the APIs each collective was timed with.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from commbench.env.probe import collect_env, collect_host, collect_rank, collect_topology
from commbench.sweep.launch import LAUNCHER_ARGV

if TYPE_CHECKING:
    from commbench.config.settings import SweepConfig
    from commbench.point import Point
    from commbench.sweep.world import World


def now() -> str:
    """The time as meta.json records it: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def typed_argv() -> list[str]:
    """The command line the user typed: the launcher's under `sweep --nproc N` (its
    --nproc kept, so the recorded command reruns the same world), else this process's."""
    launcher = os.environ.get(LAUNCHER_ARGV)
    return json.loads(launcher) if launcher else sys.argv[1:]


def collect_run(world: World, config: SweepConfig, plan: list[Point]) -> dict[str, Any]:
    """meta.json as a sweep starts: every rank's versions, host and device (gathered over
    the control group, so every rank calls this), the groups, the config and its hash."""
    from commbench.sweep.world import group_ranks

    ranks = world.gather_objects(collect_rank(world.device))
    hostnames = [rank["hostname"] for rank in ranks]
    versions = [rank["versions"] for rank in ranks]
    disagree = sorted(
        {name for v in versions for name in v if v.get(name) != versions[0].get(name)}
    )
    return {
        "label": config.label,
        "versions": versions[0],
        "ranks_disagree": {name: [v.get(name) for v in versions] for name in disagree},
        "backend": world.backend,
        "world_size": world.size,
        "nodes": len(set(hostnames)),
        "hostnames": hostnames,
        "devices": [rank["device"] for rank in ranks],
        "layout": world.layout,
        "groups": {
            tp: group_ranks(world.size, tp, world.layout) for tp in sorted({p.tp for p in plan})
        },
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "points": len(plan),
        "env": collect_env(),
        "topology": collect_topology() if world.rank == 0 else None,
        "host": {**collect_host(), "argv": typed_argv()},
        "started": now(),
        "finished": None,
    }


def collect_apis(rows: dict[Point, dict[str, Any]]) -> dict[str, list[str]]:
    """The torch.distributed calls each collective and variant was timed with."""
    apis: dict[str, set[str]] = {}
    for point, row in rows.items():
        if row.get("api"):
            apis.setdefault(f"{point.collective}.{point.variant}", set()).add(row["api"])
    return {name: sorted(used) for name, used in sorted(apis.items())}
