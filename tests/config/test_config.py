"""Config loading and validation: every bad value is one UsageError naming field and value."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.configs import MODEL

from commbench.config.settings import CONFIG_DIR, DEFAULT_CONFIG, load_config, split_list
from commbench.errors import UsageError
from commbench.sweep.backend import check_backend
from commbench.sweep.plan import resolve_tp


def test_default_config_is_the_embedded_default() -> None:
    config = load_config()
    assert config.tokens == [1, 7, 128, 2048]
    assert config.tp is None
    assert config.timing.min_samples == 5
    assert DEFAULT_CONFIG.name == "default.toml"


def test_flags_override_file_which_overrides_default(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text("tokens = [3]\nhidden = [64]\n[timing]\nmax_samples = 7\n")
    config = load_config(path, {"hidden": split_list("32,48"), "label": "x"})
    assert config.tokens == [3]
    assert config.hidden == [32, 48]
    assert config.timing.max_samples == 7
    assert config.timing.warmup == load_config().timing.warmup
    assert config.label == "x"


def test_config_hash_ignores_where_results_go() -> None:
    a = load_config(None, {"out": "a", "label": "a"})
    b = load_config(None, {"out": "b", "label": "b"})
    c = load_config(None, {"tokens": ["5"]})
    assert a.config_hash() == b.config_hash() != c.config_hash()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"tokens": ["0"]}, "--tokens: Input should be greater than 0 (got '0')"),
        ({"tokens": ["-3"]}, "--tokens: Input should be greater than 0 (got '-3')"),
        ({"tokens": ["1.5"]}, "--tokens: Input should be a valid integer"),
        ({"tokens": ["abc"]}, "(got 'abc')"),
        ({"tokens": [""]}, "--tokens:"),
        ({"hidden": ["0"]}, "--hidden: Input should be greater than 0"),
        ({"dtypes": ["int8"]}, "--dtypes: Input should be 'bfloat16', 'float16' or 'float32'"),
        ({"variants": ["fast"]}, "--variants: Input should be 'list', 'tensor' or 'padded' "),
        ({"backend": "mpi"}, "--backend: Input should be 'auto', 'nccl' or 'gloo' (got 'mpi')"),
        ({"tp": ["0"]}, "--tp: Input should be greater than 0 (got '0')"),
        ({"timing": {"target_ci": "2"}}, "--target-ci: Input should be less than 1 (got '2')"),
        ({"moe": {"experts": ["x"], "topk": ["1"], "skew": ["0"]}}, "--experts: Input should be"),
        ({"collectives": ["all_gather", "allgather"]},
         "--collectives: Input should be 'all_gather', 'reduce_scatter', 'all_reduce',"
         " 'logits_gather', 'all_to_all' or 'all_to_all_combine' (got 'allgather')"),
    ],
)  # fmt: skip
def test_bad_flag_values_name_the_flag(overrides: dict, expected: str) -> None:
    """The user typed a flag: the error names it as typed, not the TOML key."""
    with pytest.raises(UsageError) as err:
        load_config(None, overrides, source="command line")
    message = str(err.value)
    assert expected in message
    assert message.startswith("--")
    assert "\n" not in message


def test_a_bad_value_from_a_file_names_the_file_and_key(tmp_path: Path) -> None:
    """Flags for other settings do not make a file's bad value a flag's; a flag that
    replaces it is named, the file's key is not."""
    path = tmp_path / "sweep.toml"
    path.write_text("[timing]\ntarget_ci = 2\n")
    with pytest.raises(UsageError) as err:
        load_config(path, {"tokens": ["8"]})
    assert str(err.value) == f"{path}: timing.target_ci: Input should be less than 1 (got 2)"
    recorded = load_config().model_dump()
    with pytest.raises(UsageError) as err:  # a resumed run's recorded config is the base
        load_config(None, {"timing": {"warmup": "-1"}}, recorded=recorded)
    assert str(err.value) == "--warmup: Input should be greater than or equal to 0 (got '-1')"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tokens = [1,\n", "invalid TOML"),
        ("tokenz = [1]\n", "unknown key 'tokenz'"),
        ("[timing]\nwarmups = 3\n", "unknown key 'timing.warmups'"),
        ('tokens = "many"\n', "tokens: Input should be a valid list"),
        ("[timing]\nmin_samples = 1\n", "timing.min_samples: Input should be greater than"),
        ("[timing]\ntarget_ci = 2\n", "timing.target_ci: Input should be less than 1"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_resolve_tp() -> None:
    config = load_config()
    assert resolve_tp(config, 8) == [2, 4, 8]
    assert resolve_tp(config, 1) == [1]
    assert resolve_tp(load_config(None, {"tp": ["4", "2", "4"]}), 8) == [2, 4]
    with pytest.raises(UsageError, match="tp: 3 does not divide the world size 4"):
        resolve_tp(load_config(None, {"tp": ["3"]}), 4)


def test_ci_config_hash_is_pinned() -> None:
    """results/baselines/ci-gloo-4 was measured under this hash; the gate compares it."""
    assert load_config(CONFIG_DIR / "ci.toml").config_hash() == "a743708c1a1eb49d"


def test_model_section_is_informational(tmp_path: Path) -> None:
    plain, with_model = tmp_path / "plain.toml", tmp_path / "model.toml"
    plain.write_text("hidden = [64]\ntp = [2]\n")
    with_model.write_text("hidden = [64]\ntp = [2]\n" + MODEL)
    a, b = load_config(plain), load_config(with_model)
    assert a.model is None and b.model is not None and b.model.splits[0].attn_tp == 2
    assert a.config_hash() == b.config_hash()
    assert a.model_dump(exclude={"model"}) == b.model_dump(exclude={"model"})


@pytest.mark.parametrize(
    ("sweep_keys", "model_edit", "expected"),
    [
        ("hidden = [32]\n", ("", ""), "model.hidden: 64 is not among the sweep's hidden [32]"),
        ('dtypes = ["float32"]\n', ("", ""),
         "model.dtype: 'bfloat16' is not among the sweep's dtypes ['float32']"),
        ("tp = [4]\n", ("", ""), "model.splits: tp 8 dp 4 has attention groups of 2, not among"),
        ("", ("dp = 4", "dp = 3"), "model.splits: dp 3 does not divide tp 8"),
        ("", ("vocab = 1000", "vocab = 0"), "model.vocab: Input should be greater than 0"),
        ("", ('name = "m"', 'name = "m"\nlayers = 61'), "unknown key 'model.layers'"),
        ("", ('source = "s"\n', ""), "model.source: Field required"),
    ],
)  # fmt: skip
def test_model_section_must_agree_with_its_file(
    tmp_path: Path, sweep_keys: str, model_edit: tuple[str, str], expected: str
) -> None:
    path = tmp_path / "preset.toml"
    path.write_text("hidden = [64]\n" * ("hidden" not in sweep_keys) + sweep_keys
                    + MODEL.replace(*model_edit))  # fmt: skip
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_flags_may_leave_the_model_behind(tmp_path: Path) -> None:
    """The agreement is the file's: a flag overriding hidden is a choice, not an error."""
    path = tmp_path / "preset.toml"
    path.write_text("hidden = [64]\n" + MODEL)
    config = load_config(path, {"hidden": ["32"]})
    assert config.hidden == [32] and config.model is not None and config.model.hidden == 64


def test_max_tokens_drops_tokens_from_any_layer(tmp_path: Path) -> None:
    assert load_config(max_tokens=128).tokens == [1, 7, 128]
    path = tmp_path / "sweep.toml"
    path.write_text("tokens = [2, 4, 8]\n")
    assert load_config(path, max_tokens=5).tokens == [2, 4]
    assert load_config(path, {"tokens": split_list("3,30")}, max_tokens=29).tokens == [3]
    with pytest.raises(UsageError, match=r"^max-tokens: 1 leaves no token count \(tokens are \[2,"):
        load_config(path, max_tokens=1)


def test_cuda_graphs_with_list_forms_need_torch_2_8() -> None:
    """Before 2.8 ProcessGroupNCCL records each list call's flat buffer on its stream and
    capture defers the frees: K flat buffers alive at once. Refused, in one line."""
    graphs = load_config(None, {"cuda_graph": True})
    with pytest.raises(UsageError, match=r"cuda-graph: the list forms need torch 2\.8 .*2\.7\.1"):
        check_backend(graphs, "nccl", "2.7.1+cu126")
    check_backend(graphs, "nccl", "2.8.0+cu128")
    check_backend(graphs, "nccl", "2.15.0")
    tensor_only = load_config(None, {"cuda_graph": True, "variants": ["tensor"]})
    check_backend(tensor_only, "nccl", "2.7.1")
