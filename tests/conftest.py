import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/support for ranks started by spawn too

# A shell starts a background job (`make test &`, some CI runners) with SIGINT ignored,
# and every process it starts inherits that: the tests' Ctrl-C would reach nothing. With
# Python's own handler here, the processes the tests start begin with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest
from support.cli import (
    ALLOWLISTED_SECRETS,
    MOE_SWEEP,
    SHARED_FLAGS,
    UNLISTED,
    SharedRun,
    commbench,
    files_under,
    tiny_config,
    two_nodes,
)

from commbench.rundir.lock import LOCK

# What the user who runs the shared sweeps has in the environment: an NCCL setting, and
# secrets the runs must not record.
USER_ENV = {"NCCL_DEBUG": "WARN", **ALLOWLISTED_SECRETS, **UNLISTED}


@pytest.fixture(scope="session")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> SharedRun:
    """The tiny sweep on 2 local ranks (`sweep --nproc 2`) over two rounds, labelled and
    profiled, run as a user with secrets in the environment, from a directory of their own.
    Its files, summary, report and exports (test_cli_sweep); what it writes and records
    (test_security); run A of the gate's real pair."""
    root = tmp_path_factory.mktemp("local-run")
    cwd, home, tmp = root / "cwd", root / "home", root / "tmp"
    for directory in (cwd, home, tmp):
        directory.mkdir()
    config = tiny_config(root)
    out = root / "run"
    before = files_under(root)
    done = commbench(
        "sweep", "--nproc", "2", "--config", str(config), "--out", str(out), *SHARED_FLAGS,
        "--label", "local", "--profile-phases",
        cwd=cwd,
        env={"HOME": str(home), "TMPDIR": str(tmp), **USER_ENV},
    )  # fmt: skip
    return SharedRun(out, done, root, frozenset(files_under(root) - before))


@pytest.fixture(scope="session")
def forced_run(tmp_path_factory: pytest.TempPathFactory) -> SharedRun:
    """The same sweep again, with --force, into a directory holding an earlier run, its
    plots, the stale lock of a sweep that died (its pid gone) and a file of the user's:
    what --force replaces and keeps (test_faults); run B of the gate's real pair
    (test_cli_sweep)."""
    root = tmp_path_factory.mktemp("forced-run")
    out = root / "b"
    out.mkdir()
    (out / "meta.json").write_text("{}")
    (out / "results.csv").write_text("old\n")
    (out / "plot-all_gather-tp2-dp1-float32-H32-time_us.png").write_bytes(b"old plot")
    (out / "notes.txt").write_text("mine\n")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = {"pid": int(gone.stdout), "host": socket.gethostname(), "since": "2026-12-01T00:00:00"}
    (out / LOCK).write_text(json.dumps(dead))
    config = str(tiny_config(root))
    done = commbench(
        "sweep", "--nproc", "2", "--config", config, "--out", str(out), *SHARED_FLAGS, "--force",
        env=USER_ENV,  # the gate compares the recorded NCCL settings: the same user's
    )  # fmt: skip
    return SharedRun(out, done, root, frozenset())


@pytest.fixture(scope="session")
def two_node_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The MoE all_to_all sweep on the suite's one launched world of 4: two torchrun
    'nodes' of 2 ranks on loopback, one c10d rendezvous, the groups strided. Its path and
    each node's CompletedProcess. What it measured and who reads it (test_cli_all_to_all);
    how the world was made (test_multinode)."""
    root = tmp_path_factory.mktemp("two-node-run")
    out = root / "run"
    args = ["sweep", "--config", str(tiny_config(root)), "--out", str(out), *MOE_SWEEP]
    return out, two_nodes([*args, "--group-layout", "strided"], root)


# The session runs and each module's shared worlds are made once per pytest process: under
# pytest-xdist (`make test` runs `-n auto --dist loadgroup`) every test that reads one runs
# in the same worker as the others that do, and a module's tests stay together.
SHARED_RUNS = {"local_run": "two-rank-runs", "forced_run": "two-rank-runs",
               "two_node_run": "two-node-run"}  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        runs = [SHARED_RUNS[name] for name in item.fixturenames if name in SHARED_RUNS]
        group = runs[0] if runs else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
