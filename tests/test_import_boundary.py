"""Commands that only read results never import torch (2 s here, far more with CUDA)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runfixtures import key, samples_around, write_run

PROBE = """
import sys
from commbench.cli import main
sys.argv = ['commbench', *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    print('exit', exit.code)
print('torch imported:', 'torch' in sys.modules)
"""


@pytest.mark.parametrize(
    "command",
    [["report", "{a}"], ["gate", "{a}", "{b}"], ["compare", "{a}", "{b}"], ["plot", "{a}"],
     ["--help"]],
)  # fmt: skip
def test_reading_commands_leave_torch_unimported(tmp_path: Path, command: list[str]) -> None:
    rows = [(key(variant=v, tokens=t), samples_around(100, 8)) for v in ("list", "tensor")
            for t in (8, 64)]  # fmt: skip
    paths = {"a": write_run(tmp_path / "a", rows), "b": write_run(tmp_path / "b", rows)}
    args = [part.format(**paths) for part in command]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert "exit 0" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("torch imported: False")
