"""One rank of gpu-check's graph replay check: `python -m commbench.gpucheck.replay CONFIG OUT`.

Each point of CONFIG is bound as a sweep binds it, captured in a CUDA graph by the sweep's
own `capture` (on CPU, where there are no graphs, issued eagerly: the tests run it so), then
its output is zeroed, its inputs given the check pattern, the graph replayed once, and the
output compared bit for bit with what it must be. A graph that moves no data leaves zeros:
it fails. Rank 0 writes one row per point to OUT (JSON), `check` agreed over the ranks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from commbench.config.settings import load_config
from commbench.ops import bind
from commbench.ops.arena import Arena
from commbench.sweep.exact_check import prepare_check, same_bits
from commbench.sweep.plan import build_plan
from commbench.sweep.timing import EAGER, cuda_graphs, synchronize
from commbench.sweep.world import close_world, init_world


def main(argv: list[str]) -> int:
    config = load_config(Path(argv[0]))
    world = init_world(config.backend, timeout_s=config.timeout)
    batching = cuda_graphs(world.device) if world.device.type == "cuda" else EAGER
    arena = Arena(world.device)
    rows = []
    try:
        for point in build_plan(config, world.size):
            bound = bind(point, world.split(point.tp), arena)
            expected = prepare_check(bound)
            replay = batching.make(bound.run, 1)  # runs the operation once, then captures it
            bound.output.zero_()
            bound.fill()  # after the zeros: an in-place operation's input is its output
            replay()
            synchronize(world.device)
            exact = world.all_true(same_bits(bound.output, expected))
            rows.append(
                {
                    "collective": point.collective,
                    "backend": world.backend,
                    "variant": point.variant,
                    "dtype": point.dtype,
                    "tokens": point.tokens,
                    "hidden": point.hidden,
                    "vocab": point.vocab,
                    "tp": point.tp,
                    "check": "pass" if exact else "fail",
                    "note": bound.defect or bound.note,
                }
            )
            del replay, expected, bound
        if world.rank == 0:
            Path(argv[1]).write_text(json.dumps(rows))
    finally:
        close_world(world)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
