"""Where the tests find the tree they test."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "commbench"
