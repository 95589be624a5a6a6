"""Judge a torch-range sweep (scripts/torch-range.sh): every row exact, or skipped with a
note naming what this torch's backend lacks; nothing else. Exit 0 when so, 1 otherwise.

    python scripts/check_torch_range.py RUN_DIR TORCH_VERSION
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

# What gloo lacks before torch 2.8 (ProcessGroupGloo::reduce_scatter, pytorch PR 149869)
GLOO_LACKS_BEFORE_2_8 = {("reduce_scatter", "list"): "does not support reduce_scatter"}


def problems(run: Path, version: str) -> list[str]:
    meta = json.loads((run / "meta.json").read_text())
    found = []
    if not meta["versions"]["torch"].startswith(version):
        found.append(f"ran torch {meta['versions']['torch']}, not {version}")
    if meta.get("finished") is None or meta.get("stopped"):
        found.append(f"the sweep did not finish: {meta.get('stopped')}")
    old = tuple(int(x) for x in version.split(".")[:2]) < (2, 8)
    results = pd.read_csv(run / "results.csv", dtype={"note": str}).fillna({"note": ""})
    for row in results.itertuples():
        name = f"{row.collective}/{row.variant} {row.dtype} T={row.tokens}"
        lacks = GLOO_LACKS_BEFORE_2_8.get((row.collective, row.variant)) if old else None
        if lacks:
            if row.check != "skipped" or lacks not in row.note:
                found.append(f"{name}: {row.check} ({row.note!r}), expected skipped: {lacks}")
        elif row.check != "pass":
            found.append(f"{name}: {row.check} ({row.note!r})")
    return found


def main() -> int:
    run, version = Path(sys.argv[1]), sys.argv[2]
    found = problems(run, version)
    for problem in found:
        print(f"torch-range: torch {version}: {problem}", file=sys.stderr)
    if not found:
        print(f"torch-range: torch {version}: every row exact or skipped with its reason")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
