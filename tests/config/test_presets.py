"""Model presets: complete, consistent with the published model shapes, plannable, listable
without torch."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.cli import commbench, commbench_here

from commbench.config.presets import load_preset
from commbench.config.settings import SweepConfig, load_config, preset_names, preset_path, read_toml
from commbench.errors import UsageError
from commbench.sweep.plan import build_plan

# The published model shapes: hidden, vocab, and the (tp, dp) splits serving uses.
SHAPES = {
    "deepseek-v3": (7168, 129280, {(8, 1), (8, 2), (8, 4), (8, 8), (16, 2), (16, 4)}),
    "qwen3-235b-a22b": (4096, 151936, {(8, 2), (8, 4), (8, 8)}),
    "llama-3.1-70b": (8192, 128256, {(8, 2), (8, 4)}),
    "gpt-oss-120b": (2880, 201088, {(8, 2), (8, 4)}),
    "odd-vocab": (8192, 128257, {(8, 4)}),
}
DECODE_MAX = 512  # SGLang's largest CUDA-graph batch; prefill chunks per group start above
VARIANT_POINTS = 7  # all_gather, reduce_scatter and logits_gather x 2 variants, all_reduce
ROUTED = ["all_to_all", "all_to_all_combine"]  # a MoE model's dispatch and combine
MOE = {"deepseek-v3": (256, 8), "qwen3-235b-a22b": (128, 8), "gpt-oss-120b": (128, 4)}


def test_the_five_presets_and_nothing_else() -> None:
    assert preset_names() == sorted(SHAPES)  # default.toml and ci.toml have no [model]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shapes_are_the_ones_in_scenarios(name: str) -> None:
    model = load_config(preset=name).model
    assert model is not None
    hidden, vocab, splits = SHAPES[name]
    assert (model.hidden, model.vocab, model.dtype) == (hidden, vocab, "bfloat16")
    assert {(split.tp, split.dp) for split in model.splits} == splits
    assert model.source and model.note


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_preset_is_complete_and_sweeps_its_model(name: str) -> None:
    path = preset_path(name)
    alone = SweepConfig.model_validate(read_toml(path))  # no key left to default.toml
    config = load_config(preset=name)
    assert config == alone
    assert config.model is not None and config.tp is not None
    assert config.hidden == [config.model.hidden]
    assert config.dtypes == [config.model.dtype]
    assert sorted(config.tp) == sorted({split.attn_tp for split in config.model.splits})
    assert config.rounds == 1
    assert config.timing == load_config().timing  # default.toml's GPU timing
    routed = ROUTED if name in MOE else []
    assert config.collectives == [*load_config().collectives, "logits_gather", *routed]
    assert (config.model.experts, config.model.topk) == MOE.get(name, (0, 0))
    if name in MOE:  # the sweep routes as the model does: its experts and top-k, some skews
        assert config.moe is not None and (config.moe.experts, config.moe.topk) == (
            [config.model.experts],
            [config.model.topk],
        )
        assert 0.0 in config.moe.skew and len(config.moe.skew) > 1
    assert config.vocab == [config.model.vocab]
    decode = [t for t in config.tokens if t <= DECODE_MAX]
    prefill = [t for t in config.tokens if t > DECODE_MAX]
    assert 1 in decode and any(t % max(config.tp) for t in decode)  # padding happens
    assert {1024, 16384} <= set(prefill) and max(prefill) == 16384


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_preset_plans_on_the_world_it_needs(name: str) -> None:
    config = load_config(preset=name)
    preset = load_preset(name)
    assert config.tp is not None and preset.min_world == math.lcm(*config.tp)
    assert preset.min_world == max(config.tp)
    plan = build_plan(config, preset.min_world)
    routed = 2 * 3 * len(config.moe.skew) if config.moe else 0  # 2 phases x 3 forms per skew
    assert len(plan) == len(config.tp) * len(config.tokens) * (VARIANT_POINTS + routed)
    assert {p.tp for p in plan} == set(config.tp)
    assert {p.hidden for p in plan} == {*config.hidden, 0}  # 0: the logits rows
    assert {p.vocab for p in plan} == {0, *config.vocab}
    for world in preset.serving_worlds:  # serving's own world: dp groups run at once
        plan = build_plan(config, world)
        assert {(p.tp, p.dp) for p in plan} >= {(s.attn_tp, s.dp) for s in preset.model.splits
                                                 if s.tp == world}  # fmt: skip


def test_odd_vocab_is_uneven_for_its_groups() -> None:
    config = load_config(preset="odd-vocab")
    assert config.model is not None and config.tp == [2]
    assert config.model.vocab % 2 == 1
    assert all(load_config(preset=n).model.vocab % 8 == 0 for n in SHAPES if n != "odd-vocab")
    # the comment's recipe: the logits gather as [V, T] gathered along V, uneven at tp 2
    logits = load_config(
        None, {"tokens": ["128257"], "hidden": ["1", "160"], "collectives": ["all_gather"]},
        preset="odd-vocab",
    )  # fmt: skip
    assert {(p.tokens % p.tp, p.hidden) for p in build_plan(logits, 8)} == {(1, 1), (1, 160)}


def test_flags_override_a_preset_and_keep_its_model() -> None:
    config = load_config(None, {"hidden": ["4096"], "tp": ["2"]}, preset="deepseek-v3")
    assert config.hidden == [4096] and config.tp == [2]
    assert config.model is not None and config.model.hidden == 7168  # where the run came from


def test_max_tokens_reduces_a_preset() -> None:
    full = load_config(preset="deepseek-v3")
    reduced = load_config(preset="deepseek-v3", max_tokens=2)
    assert reduced.tokens == [1, 2]
    assert reduced.model == full.model and reduced.tp == full.tp
    assert reduced.config_hash() != full.config_hash()  # a reduced run is another sweep


def test_unknown_preset() -> None:
    with pytest.raises(UsageError) as err:
        load_config(preset="deepseek-v4")
    assert str(err.value) == (
        "preset: unknown 'deepseek-v4', expected one of ['deepseek-v3', 'gpt-oss-120b',"
        " 'llama-3.1-70b', 'odd-vocab', 'qwen3-235b-a22b']"
    )


def test_preset_and_config_are_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[timing]\nmax_seconds = 0.5\n")
    with pytest.raises(UsageError, match="preset: cannot be combined with --config"):
        load_config(path, preset="deepseek-v3")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--preset", "nope"], "commbench: error: preset: unknown 'nope', expected one of ["),
        (["--preset", "deepseek-v3", "--max-tokens", "0"],
         "commbench: error: max-tokens: 0 leaves no token count (tokens are [1, 2, 4,"),
    ],
)  # fmt: skip
def test_sweep_refuses_in_one_line(args: list[str], expected: str) -> None:
    done = commbench_here("sweep", "--nproc", "8", *args)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(expected), done.stderr


PROBE = """
import sys
from commbench.cli import main
sys.argv = ['commbench', 'presets']
try:
    main()
except SystemExit as exit:
    print('exit', exit.code)
print('torch imported:', 'torch' in sys.modules)
"""


def test_presets_command_lists_all_without_torch(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch imported: False"), done.stdout + done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("│")}
    assert sorted(rows) == sorted(SHAPES)  # one line each
    deepseek = rows["deepseek-v3"]
    for cell in ("DeepSeek-V3", "7168", "129280", "tp 8: dp 1/2/4/8; tp 16: dp 2/4",
                 "8 (8, 16)", "config_671B.json"):  # fmt: skip
        assert cell in deepseek
    assert "2 (8)" in rows["odd-vocab"] and "128257" in rows["odd-vocab"]


def test_reduced_preset_runs_on_eight_ranks(tmp_path: Path) -> None:
    """The smallest real DeepSeek-V3 sweep: every group size of a world of 8, T = 1 and 2."""
    out = tmp_path / "run"
    done = commbench(
        "sweep", "--nproc", "8", "--preset", "deepseek-v3", "--max-tokens", "2",
        "--collectives", "all_gather", "--dtypes", "bfloat16", "--out", str(out),
        "--warmup", "1", "--min-sample-ms", "1", "--max-iters", "5",
        "--min-samples", "3", "--max-samples", "3", "--max-seconds", "0.1",
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = pd.read_csv(out / "results.csv")
    assert set(results["tp"]) == {8, 4, 2, 1}
    assert set(results["dp"]) == {1, 2, 4, 8}
    assert set(results["hidden"]) == {7168}
    assert set(results["tokens"]) == {1, 2}
    assert len(results) == 4 * 2 * 2  # group sizes x tokens x (list, tensor)
    assert (results["check"] == "pass").all()
