"""`commbench env`: what makes numbers comparable on this machine, for people or for JSON.

Versions, NCCL built vs bound at run time (the trap: torch names the version it was built with),
GPUs and driver, topology, hostname and the allowlisted environment, never all of it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from commbench.console import make_console

CPU_ONLY = "CPU only: no GPU visible; sweeps use gloo"


def show_env(info: dict[str, Any], as_json: bool) -> None:
    """Print the environment report (`commbench.env.probe.collect_all`'s): a table, or
    JSON on stdout with `--json`."""
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return
    render_env(info, make_console(highlight=False))


def render_env(info: dict[str, Any], console: Console) -> None:
    console.print(_table("Versions", _version_rows(info["versions"])))
    console.print(_table("NCCL", _nccl_rows(info["nccl"])))
    if info["nccl"]["mismatch"]:
        console.print(Text(_mismatch_line(info["nccl"]), style="bold yellow"), soft_wrap=True)
    console.print(_table("GPUs", _gpu_rows(info["gpus"])))
    console.print(Text(_backend_line(info), style="bold"), soft_wrap=True)
    if info["topology"]:
        console.print(Text("Topology (nvidia-smi topo -m)", style="bold"))
        console.print(Text(info["topology"]), soft_wrap=True)
    console.print(_table("Host", [("hostname", info["hostname"])]))
    env_rows = list(info["env"].items()) or [("(none set)", "")]
    console.print(_table("Environment (allowlisted, secrets redacted)", env_rows))


def _table(title: str, rows: list[tuple[str, Any]]) -> Group:
    """A bold heading over a borderless two-column table (values are never markup)."""
    table = Table(show_header=False, box=None)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), Text("-" if value is None else str(value)))
    return Group(Text(title, style="bold"), table)


def _version_rows(versions: dict[str, Any]) -> list[tuple[str, Any]]:
    names = ("commbench", "torch", "python", "cuda")
    return [(name, versions.get(name)) for name in names]


def _nccl_rows(nccl: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("built (torch)", nccl["built"]),
        ("bound (runtime)", nccl["runtime"]),
        ("bound from", nccl["path"]),
        ("mapped copies", ", ".join(nccl["mapped"]) or None),
    ]


def _mismatch_line(nccl: dict[str, Any]) -> str:
    return (
        f"warning: torch was built with NCCL {nccl['built']} but NCCL {nccl['runtime']} "
        f"is the one NCCL calls go to ({nccl['path']}); results belong to that one"
    )


def _gpu_rows(gpus: dict[str, Any]) -> list[tuple[str, Any]]:
    models = Counter(gpus["names"])
    names = ", ".join(f"{n} x {name}" for name, n in models.items()) if models else None
    return [("count", gpus["count"]), ("models", names), ("driver", gpus["driver"])]


def _backend_line(info: dict[str, Any]) -> str:
    count, backend = info["gpus"]["count"], info["backend"]
    if count == 0:
        return CPU_ONLY
    if backend != "nccl":
        return f"{count} GPU(s) visible, but this torch has no NCCL; sweeps use {backend}"
    return f"{count} GPU(s) visible; sweeps use nccl"
