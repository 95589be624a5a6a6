"""Where the tests find the tree they test."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "commbench"
# Test-only hooks a rank loads when this directory is first on its PYTHONPATH (a planted
# slowdown, crash or hang: see its sitecustomize)
HOOKS = REPO / "tests" / "support" / "hooks"
# Three real runs written by the first schema (4 gloo ranks, configs/ci.toml): what a
# newer commbench must still read
SCHEMA_1_RUNS = REPO / "tests" / "support" / "data" / "schema-1"
