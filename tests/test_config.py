"""Config loading and validation: every bad value is one UsageError naming field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from commbench.config import DEFAULT_CONFIG, load_config, resolve_tp, split_list
from commbench.errors import UsageError


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
        ({"tokens": ["0"]}, "tokens: Input should be greater than 0 (got '0')"),
        ({"tokens": ["-3"]}, "tokens: Input should be greater than 0 (got '-3')"),
        ({"tokens": ["1.5"]}, "tokens: Input should be a valid integer"),
        ({"tokens": ["abc"]}, "(got 'abc')"),
        ({"tokens": [""]}, "tokens:"),
        ({"hidden": ["0"]}, "hidden: Input should be greater than 0"),
        ({"dtypes": ["int8"]}, "dtypes: Input should be 'bfloat16', 'float16' or 'float32'"),
        ({"collectives": ["all_to_all"]}, "unknown collective 'all_to_all'"),
        ({"variants": ["fast"]}, "variants: Input should be 'list' or 'tensor' (got 'fast')"),
        ({"backend": "mpi"}, "backend: Input should be 'auto', 'nccl' or 'gloo' (got 'mpi')"),
        ({"tp": ["0"]}, "tp: Input should be greater than 0 (got '0')"),
    ],
)
def test_bad_flag_values(overrides: dict, expected: str) -> None:
    with pytest.raises(UsageError) as err:
        load_config(None, overrides, source="command line")
    message = str(err.value)
    assert expected in message
    assert message.startswith("command line: ")
    assert "\n" not in message


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
