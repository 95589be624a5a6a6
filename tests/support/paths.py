"""Where the tests find the tree they test."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "commbench"
# Test-only hooks a rank loads when this directory is first on its PYTHONPATH (a planted
# slowdown, crash or hang: see its sitecustomize)
HOOKS = REPO / "tests" / "support" / "hooks"
