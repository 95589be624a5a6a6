"""Security: configs are data; a label is a plain name and out a literal path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import commbench

from commbench.config import load_config
from commbench.errors import UsageError
from commbench.results import default_run_dir

MODEL = """
hidden = [64]
[model]
name = "m"
source = "s"
hidden = 64
vocab = 1000
dtype = "bfloat16"
splits = [{ tp = 8, dp = 4 }]
"""

# --- configs are data: nothing in a TOML file runs, loads or expands ----------------------

# Each file writes MARKER if anything executes it; "PAYLOAD" is Python that would.
PAYLOAD = "__import__('os').system('touch MARKER')"
CODE_CONFIGS = [
    ('label = "PAYLOAD"\n', "label: must be 1-100 letters"),
    ("backend = \"!!python/object/apply:os.system ['touch MARKER']\"\n",
     "backend: Input should be 'auto', 'nccl' or 'gloo'"),
    ('"!!python/object/apply:os.system" = ["touch MARKER"]\n',
     "unknown key '!!python/object/apply:os.system'"),
    ("!!python/object = 1\n", "invalid TOML"),
    ('include = "other.toml"\n', "unknown key 'include'"),
    ('extends = "other.toml"\n', "unknown key 'extends'"),
    ('__class__ = "PAYLOAD"\n', "unknown key '__class__'"),
    ('[timing]\nimport = "os"\n', "unknown key 'timing.import'"),
    ('[tool.commbench]\nout = "x"\n', "unknown key 'tool'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CODE_CONFIGS)
def test_code_in_a_config_is_refused_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.toml"
    path.write_text(text.replace("PAYLOAD", PAYLOAD).replace("MARKER", str(marker)))
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}: " in message and expected in message and "\n" not in message
    assert not marker.exists()


def test_code_like_strings_are_kept_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a free string is allowed it stays a string: no eval, no shell, no expansion."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    note = (
        PAYLOAD.replace("MARKER", str(marker)) + f" $(touch {marker}) `touch {marker}` ${{HOME}} ~"
    )
    path = tmp_path / "notes.toml"
    path.write_text(MODEL + f"note = {json.dumps(note)}\n")  # a JSON string is a TOML string
    config = load_config(path)
    assert config.model is not None and config.model.note == note
    assert sorted(tmp_path.iterdir()) == [path]


# --- label and out: a plain name, a literal path -----------------------------------------

LABEL_RULE = "must be 1-100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
EXPANSION = "'~' and '$' are not expanded; give the path itself"


# The README's, the Makefile's and the benchmarks' labels, a commit id, the longest allowed.
LABELS_IN_USE = ["nccl-2.21.5", "ci-current", "baseline-1", "aa-01", "two-nodes", "v2+cu124"]
LABELS_IN_USE += ["0f3c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "a" * 100]


@pytest.mark.parametrize("label", LABELS_IN_USE)
def test_labels_in_use_are_accepted_and_stay_in_the_results_directory(
    tmp_path: Path, label: str
) -> None:
    assert load_config(None, {"label": label}).label == label
    assert default_run_dir(label, tmp_path).parent == tmp_path


@pytest.mark.parametrize("out", ["run", "results/x.y", "../sibling", "/abs/run dir", "a~b"])
def test_literal_outs_are_accepted(out: str) -> None:
    assert load_config(None, {"out": out}).out == out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--label", "../../etc"], f"command line: label: {LABEL_RULE} (got '../../etc')"),
        (["--label", "a/b"], f"command line: label: {LABEL_RULE} (got 'a/b')"),
        (["--label", ""], f"command line: label: {LABEL_RULE} (got '')"),
        (["--label", ".hidden"], f"command line: label: {LABEL_RULE} (got '.hidden')"),
        (["--label", "a,b"], f"command line: label: {LABEL_RULE} (got 'a,b')"),
        (["--label", "a\nb"], f"command line: label: {LABEL_RULE} (got 'a\\nb')"),
        (["--label", "x" * 101], f"command line: label: {LABEL_RULE} (got '{'x' * 101}')"),
        (["--out", "~/runs/x"], f"command line: out: {EXPANSION} (got '~/runs/x')"),
        (["--out", "$HOME/x"], f"command line: out: {EXPANSION} (got '$HOME/x')"),
        (["--out", "runs/${USER}"], f"command line: out: {EXPANSION} (got 'runs/${{USER}}')"),
        (["--out", ""], "command line: out: must not be empty (leave it out for results/<time>"),
    ],
)
def test_bad_label_or_out_flag_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = commbench("sweep", "--nproc", "2", *args, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("commbench: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"commbench: error: {expected}")
    assert list(tmp_path.iterdir()) == []  # no results/, no directory named '~' or '$HOME'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('label = "../x"\n', f"label: {LABEL_RULE} (got '../x')"),
        ('out = "~/x"\n', f"out: {EXPANSION} (got '~/x')"),
        ('out = "$HOME/x"\n', f"out: {EXPANSION} (got '$HOME/x')"),
        ('out = "a\\u0000b"\n', "out: must not contain control characters (got 'a\\x00b')"),
    ],
)
def test_bad_label_or_out_in_a_file_is_one_line_and_writes_nothing(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text(text)
    done = commbench("sweep", "--nproc", "2", "--config", str(config), cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"commbench: error: {config}: {expected}" in done.stderr.splitlines()
    assert list(tmp_path.iterdir()) == [config]
