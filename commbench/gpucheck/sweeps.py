"""The sweeps gpu-check runs, as config files: each check's, for a world of `ranks` ranks on
`backend` (nccl on a GPU; the tests run the same sweeps on gloo, on CPU)."""

from __future__ import annotations

import pandas as pd

from commbench.point import ELEMENT_SIZE

DTYPES = tuple(ELEMENT_SIZE)
TOKENS = (1, 5, 8)  # one token, uneven for every tp above 1, even
VOCABS = (24, 25)  # even for every tp here, and odd for every tp above 1
HIDDEN = 24
EVERY_COLLECTIVE = (
    "all_gather",
    "reduce_scatter",
    "all_reduce",
    "logits_gather",
    "all_to_all",
    "all_to_all_combine",
)
EVERY_VARIANT = ("list", "tensor", "padded")  # each collective runs those it has
# A point no GPU holds: a 256 GiB bfloat16 all_gather output (2**16 tokens x 2**21).
HUGE = (2**16, 2**21)
FITS = 8  # tokens: the same hidden size at 8 tokens is 32 MiB, which every GPU holds
# A GPU-bound point even on one rank: an out-of-place all_gather into 128 MiB (bfloat16)
# is a real copy through the GPU's memory, unlike a one-rank in-place all_reduce, which
# NCCL skips.
LARGE = (8192, 8192)
LARGE_BYTES = LARGE[0] * LARGE[1] * ELEMENT_SIZE["bfloat16"]

QUICK = {"warmup": 1, "min_sample_ms": 0.05, "max_iters": 2, "samples": 2}
CAREFUL = {"warmup": 5, "min_sample_ms": 20.0, "max_iters": 1000, "samples": 15}
TIMING = """[timing]
warmup = {warmup}
min_sample_ms = {min_sample_ms}
max_iters = {max_iters}
min_samples = {samples}
max_samples = {samples}
target_ci = 0.5
max_seconds = 30
"""


def config_text(body: str, timing: dict) -> str:
    return body + "\n" + TIMING.format(**timing)


def _listed(values: tuple | list) -> str:
    return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "]"


def splits(ranks: int) -> list[int]:
    """Every group size a world of `ranks` deals into."""
    return [tp for tp in range(1, ranks + 1) if ranks % tp == 0]


def exact(ranks: int, backend: str) -> str:
    """Every collective and variant, dtype, T in TOKENS, every tp, even and odd vocab, one
    routing (its splits uneven already: T=5 sends 3 tokens one way and 2 the other): the
    check of every row, and the temporary memory of each. 270 points on two ranks, sized
    for the step's limit (catalogue.LIMITS)."""
    return config_text(
        f"tokens = {_listed(TOKENS)}\nhidden = [{HIDDEN}]\ndtypes = {_listed(DTYPES)}\n"
        f"tp = {_listed(splits(ranks))}\ncollectives = {_listed(EVERY_COLLECTIVE)}\n"
        f"vocab = {_listed(VOCABS)}\nvariants = {_listed(EVERY_VARIANT)}\n"
        f'backend = "{backend}"\nrounds = 1\n'
        f"[moe]\nexperts = [{2 * ranks}]\ntopk = [2]\nskew = [0.0]\n",
        QUICK,
    )


def huge(ranks: int, backend: str) -> str:
    """A point no GPU holds, which must be skipped with its reason, beside one that fits
    (FITS tokens, 32 MiB), which must pass: a sweep where no point fits is refused before
    it starts, which would prove nothing about skipping."""
    tokens, hidden = HUGE
    return config_text(
        f'tokens = [{FITS}, {tokens}]\nhidden = [{hidden}]\ndtypes = ["bfloat16"]\ntp = [{ranks}]\n'
        f'collectives = ["all_gather"]\nvariants = ["tensor"]\nbackend = "{backend}"\n'
        "rounds = 1\n",
        QUICK,
    )


def huge_expected(row: pd.Series) -> str:
    """What each row of `huge` must end with."""
    return "pass" if row["tokens"] == FITS else "skipped"


def graphed(ranks: int, list_forms: bool) -> str:
    """Two sizes of two collectives under --cuda-graph, ten samples in each of two rounds."""
    variants = ["list", "tensor"] if list_forms else ["tensor"]
    return config_text(
        'tokens = [8, 1024]\nhidden = [4096]\ndtypes = ["bfloat16"]\n'
        f'collectives = ["all_gather", "all_reduce"]\nvariants = {_listed(variants)}\n'
        f'backend = "nccl"\nrounds = 2\ntp = [{ranks}]\n',
        {**QUICK, "samples": 10, "max_iters": 50, "min_sample_ms": 1},
    )


def gpu_bound(ranks: int) -> str:
    """The 128 MiB out-of-place all_gather, timed with care (CAREFUL)."""
    tokens, hidden = LARGE
    return config_text(
        f'tokens = [{tokens}]\nhidden = [{hidden}]\ndtypes = ["bfloat16"]\n'
        'collectives = ["all_gather"]\nvariants = ["tensor"]\nbackend = "nccl"\n'
        f"rounds = 1\ntp = [{ranks}]\n",
        CAREFUL,
    )


def long_running(backend: str) -> str:
    """Two ranks, fifty rounds: a run that is still going when one rank is stopped."""
    return config_text(
        'tokens = [8, 64, 512]\nhidden = [4096]\ndtypes = ["bfloat16"]\n'
        'collectives = ["all_gather", "all_reduce"]\nvariants = ["tensor"]\n'
        f'backend = "{backend}"\nrounds = 50\ntp = [2]\n',
        {**QUICK, "samples": 5, "min_sample_ms": 1},
    )


def tiny() -> str:
    """One small all_reduce on NCCL: enough to create a communicator."""
    return config_text(
        'tokens = [8]\nhidden = [1024]\ndtypes = ["bfloat16"]\ncollectives = ["all_reduce"]\n'
        'variants = ["tensor"]\nbackend = "nccl"\nrounds = 1\n',
        QUICK,
    )


def replayed(ranks: int, backend: str, list_forms: bool) -> str:
    """Every collective and variant at two token counts, for the graph replay check."""
    variants = EVERY_VARIANT if list_forms else ("tensor", "padded")
    return config_text(
        f'tokens = [5, 8]\nhidden = [{HIDDEN}]\ndtypes = ["bfloat16"]\n'
        f"tp = {_listed(splits(ranks))}\ncollectives = {_listed(EVERY_COLLECTIVE)}\n"
        f"vocab = {_listed(VOCABS)}\nvariants = {_listed(variants)}\n"
        f'backend = "{backend}"\nrounds = 1\n'
        f"[moe]\nexperts = [{2 * ranks}]\ntopk = [2]\nskew = [0.0]\n",
        QUICK,
    )
