"""The result schema: the columns of a run directory's files and the files' names."""

from __future__ import annotations

# 2: `vocab` joins the key; `padded_vocab`, `temp_mem_bytes` the results.
# 3: rounds.csv, so an interrupted run can be resumed round by round; `layout` and
#    `cuda_graph` columns.
# 4: `experts`, `topk`, `skew` join the key (all_to_all's MoE routing); `routed_bytes`,
#    `padded_bytes`, `imbalance` the results.
SCHEMA_VERSION = 4

KEY_COLUMNS = [
    "collective",
    "variant",
    "backend",
    "world_size",
    "dp",
    "tp",
    "dtype",
    "tokens",
    "hidden",
    "vocab",
    "experts",
    "topk",
    "skew",
]
RESULT_COLUMNS = [
    *KEY_COLUMNS,
    "padded_tokens",
    "padded_vocab",
    "bytes",
    "routed_bytes",
    "padded_bytes",
    "imbalance",
    "time_us",
    "time_us_p10",
    "time_us_p90",
    "time_us_min",
    "time_us_mean",
    "time_us_std",
    "ci_low_us",
    "ci_high_us",
    "cv",
    "outliers",
    "samples",
    "rounds",
    "iters",
    "stop",
    "algbw_gbps",
    "busbw_gbps",
    "check",
    "temp_mem_bytes",
    "api",
    "layout",
    "cuda_graph",
    "note",
]
SAMPLE_COLUMNS = [*KEY_COLUMNS, "round", "sample", "time_us", "slowest_rank"]
RANK_SAMPLE_COLUMNS = [*KEY_COLUMNS, "round", "sample", "rank", "time_us"]
ROUND_COLUMNS = [*KEY_COLUMNS, "round", "iters", "samples", "stop"]

RESULTS_CSV = "results.csv"
SAMPLES_CSV = "samples.csv"
RANK_SAMPLES_CSV = "rank_samples.csv"
ROUNDS_CSV = "rounds.csv"
META_JSON = "meta.json"
RUN_FILES = (RESULTS_CSV, SAMPLES_CSV, RANK_SAMPLES_CSV, ROUNDS_CSV, META_JSON)
# What commands write into a run directory from its files (`commbench plot`'s images):
# replacing the run (`sweep --force`) removes them with it.
PLOT_PREFIX = "plot"
DERIVED = (f"{PLOT_PREFIX}-*.png", f"{PLOT_PREFIX}-*.svg")
