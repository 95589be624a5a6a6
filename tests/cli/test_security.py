"""Security: configs are data, the recorded environment is an allowlist with secrets
redacted by name and by value, and a run writes only inside its output directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.cli import ALLOWLISTED_SECRETS, UNLISTED, SharedRun, commbench_here
from support.configs import MODEL as PRESET_MODEL

from commbench.config.settings import load_config
from commbench.env.probe import REDACTED, SECRET_VALUES, collect_env
from commbench.errors import UsageError
from commbench.rundir.schema import META_JSON, RUN_FILES
from commbench.rundir.writer import default_run_dir

MODEL = "hidden = [64]\n" + PRESET_MODEL  # a [model] table whose sweep keys agree

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


# The docs', the Makefile's and the benchmarks' labels, a commit id, the longest allowed.
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
        (["--label", "../../etc"], f"--label: {LABEL_RULE} (got '../../etc')"),
        (["--label", "a/b"], f"--label: {LABEL_RULE} (got 'a/b')"),
        (["--label", ""], f"--label: {LABEL_RULE} (got '')"),
        (["--label", ".hidden"], f"--label: {LABEL_RULE} (got '.hidden')"),
        (["--label", "a,b"], f"--label: {LABEL_RULE} (got 'a,b')"),
        (["--label", "a\nb"], f"--label: {LABEL_RULE} (got 'a\\nb')"),
        (["--label", "x" * 101], f"--label: {LABEL_RULE} (got '{'x' * 101}')"),
        (["--out", "~/runs/x"], f"--out: {EXPANSION} (got '~/runs/x')"),
        (["--out", "$HOME/x"], f"--out: {EXPANSION} (got '$HOME/x')"),
        (["--out", "runs/${USER}"], f"--out: {EXPANSION} (got 'runs/${{USER}}')"),
        (["--out", ""], "--out: must not be empty (leave it out for results/<time>"),
    ],
)
def test_bad_label_or_out_flag_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = commbench_here("sweep", "--nproc", "2", *args, cwd=tmp_path)
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
    done = commbench_here("sweep", "--nproc", "2", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"commbench: error: {config}: {expected}" in done.stderr.splitlines()
    assert list(tmp_path.iterdir()) == [config]


# --- the recorded environment ------------------------------------------------------------

# Allowlisted names whose values look secret: every value rule has a row only it catches.
SECRET_ENV = [
    ("MASTER_ADDR", "https://user:pass@head-node"),  # credentials in a URL
    ("NCCL_DEBUG_FILE", "s3://ghp_abc@bucket/nccl.log"),  # a user (a token) before the host
    ("NCCL_COMM_ID", "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz"),  # GitHub
    ("CUDA_CACHE_PATH", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"),  # Hugging Face
    ("OMP_PLACES", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),  # OpenAI-style
    ("GLOO_DEVICE_TRANSPORT", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("TORCH_DISTRIBUTED_DEBUG", "glpat-xxxxxxxxxxxxxxxxxxxx"),  # GitLab
    ("GLOO_SOCKET_IFNAME", "AKIAIOSFODNN7EXAMPLE"),  # AWS access key id
    ("MASTER_PORT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),  # JWT
    ("NCCL_NET", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk="),  # PEM
    ("NCCL_IB_HCA", "user=alice;password=hunter2"),  # a secret key inside the value
    ("CUDA_MPS_PIPE_DIRECTORY", "0123456789abcdef0123456789abcdef"),  # 32 hex digits
    ("TORCH_NCCL_TRACE_BUFFER_SIZE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),  # AWS secret
    ("NCCL_SOCKET_IFNAME", "eth0,dGhpcyBpcyBhIHNlY3JldCB0aGF0IGlzIGxvbmc"),  # base64 in a list
]
ORDINARY_ENV = [
    ("NCCL_SOCKET_IFNAME", "eth0,ib0"),
    ("NCCL_SOCKET_IFNAME", "^docker"),
    ("NCCL_DEBUG", "INFO"),
    ("NCCL_DEBUG_SUBSYS", "INIT,NET,GRAPH"),
    ("NCCL_PROTO", "Simple,LL128"),
    ("NCCL_IB_HCA", "mlx5_0:1,mlx5_1:1"),
    ("NCCL_NET_PLUGIN", "/usr/lib/x86_64-linux-gnu/libnccl.so.2"),
    ("NCCL_DEBUG_FILE", "/tmp/nccl-%h-%p.log"),
    ("NCCL_TUNER_PLUGIN", "/nix/store/0c4mnk3bq2x7rkm1hq2jqy8s5m4vq0x9-nccl-2.21.5/lib"),
    ("CUDA_HOME", "/opt/nvidia/hpc_sdk/Linux_x86_64/24.1/cuda"),
    ("CUDA_HOME", "/opt/NVIDIA/Linux/2024/cuda12/lib64/stubs"),  # long, mixed, but a path
    ("CUDA_VISIBLE_DEVICES", "0,1,2,3"),
    ("CUDA_VISIBLE_DEVICES", "GPU-8f2c1a4e-5b6d-4c3e-9a1f-0e2d3c4b5a69"),
    ("CUDA_VISIBLE_DEVICES", "MIG-GPU-8f2c1a4e-5b6d-4c3e-9a1f-0e2d3c4b5a69/1/0"),
    ("MASTER_ADDR", "node-001.cluster.local"),
    ("MASTER_ADDR", "10.0.0.1"),
    ("MASTER_ADDR", "https://head-node.example:29400"),  # a URL without credentials
    ("MASTER_PORT", "29500"),
    ("TORCH_DISTRIBUTED_DEBUG", "DETAIL"),
    ("OMP_NUM_THREADS", "1"),
]


@pytest.mark.parametrize(("name", "value"), SECRET_ENV)
def test_secret_looking_values_are_redacted_though_allowlisted(name: str, value: str) -> None:
    assert collect_env({name: value}) == {name: REDACTED}


@pytest.mark.parametrize(("name", "value"), ORDINARY_ENV)
def test_ordinary_values_are_kept(name: str, value: str) -> None:
    assert collect_env({name: value}) == {name: value}


@pytest.mark.parametrize("pattern", SECRET_VALUES, ids=[str(i) for i in range(len(SECRET_VALUES))])
def test_every_value_rule_is_needed(pattern: re.Pattern[str]) -> None:
    """A rule no row needs alone is a rule no test would miss."""
    alone = [
        value
        for _, value in SECRET_ENV
        if [rule for rule in SECRET_VALUES if rule.search(value)] == [pattern]
    ]
    assert alone


# --- a whole run: its files only under --out, no secret in any of them --------------------


def test_a_run_writes_only_under_out_and_records_no_secret(local_run: SharedRun) -> None:
    """The shared run was started from its own cwd with its own HOME and TMPDIR, secrets in
    the environment: it added its run files and nothing else, anywhere under them."""
    done, out = local_run.done, local_run.path
    assert done.returncode == 0, done.stderr
    written = {out / name for name in RUN_FILES}
    assert local_run.written == written

    env = json.loads((out / META_JSON).read_text())["env"]
    assert env["NCCL_DEBUG"] == "WARN"  # the allowlist was read ...
    assert {name: env[name] for name in ALLOWLISTED_SECRETS} == dict.fromkeys(
        ALLOWLISTED_SECRETS, REDACTED
    )  # ... and its secrets redacted
    assert UNLISTED.keys().isdisjoint(env)
    text = "".join(path.read_text() for path in written) + done.stdout + done.stderr
    assert "s3cr3t" not in text.lower()
