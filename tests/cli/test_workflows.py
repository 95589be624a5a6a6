"""The GitHub Actions workflows parse, and every command they run exists: make targets
and variables in the Makefile, commbench subcommands and their options (parsed by the real
CLI with --help, which runs nothing), scripts in the repository, actions pinned to a
major version."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from support.cli import ROOT
from typer.testing import CliRunner

from commbench.cli import app

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
MAKEFILE = (ROOT / "Makefile").read_text()
MAKE_TARGETS = set(re.findall(r"^([A-Za-z][\w.-]*):(?!=)", MAKEFILE, re.MULTILINE))
MAKE_VARIABLES = dict(re.findall(r"^([A-Z_]+) *[?:]?= *(.*)$", MAKEFILE, re.MULTILINE))
TOOLS = {"python", "make", "cat", "echo", "test", "mkdir", "cp", "rm"}  # on every runner
SEPARATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>", ">&"}
ACTION = re.compile(r"[\w.-]+/[\w.-]+@v\d+")


def run_steps(workflow: dict) -> list[tuple[str, str]]:
    """(job, script) for every `run:` step."""
    return [
        (job_name, step["run"])
        for job_name, job in workflow["jobs"].items()
        for step in job["steps"]
        if "run" in step
    ]


def commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script: words, without redirections or the
    VAR=value assignments before a command."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        tokens = iter(lexer)
        for token in tokens:
            if token in SEPARATORS:
                found.append(words)
                words = []
            elif token in REDIRECTS:
                next(tokens)  # the file
            elif words or not re.fullmatch(r"[A-Za-z_]\w*=.*", token):
                words.append(token)
        found.append(words)
    return [words for words in found if words]


def check_command(words: list[str]) -> None:
    program, args = words[0], words[1:]
    if program.startswith(".venv/bin/"):
        program = program.removeprefix(".venv/bin/")
        assert program in ("python", "commbench"), f"{program}: not installed by make setup"
    if program == "make":
        for arg in args:
            if "=" in arg:
                assert arg.split("=")[0] in MAKE_VARIABLES, f"make: no variable {arg}"
            else:
                assert arg in MAKE_TARGETS, f"make: no target {arg!r}"
    elif program == "commbench":
        done = CliRunner().invoke(app, [*args, "--help"])
        assert done.exit_code == 0, f"commbench {' '.join(args)}: {done.output}"
    elif "/" in program:
        assert (ROOT / program).is_file(), f"{program}: no such script"
    else:
        assert program in TOOLS, f"{program}: not a tool every runner has"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_command_a_workflow_runs_exists(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["jobs"]
    checked = 0
    for _, script in run_steps(workflow):
        for words in commands(script):
            check_command(words)
            checked += 1
    assert checked
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert ACTION.fullmatch(step["uses"]), step["uses"]


def test_ci_lints_tests_and_gates_and_keeps_the_run() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    made = {
        job: [words[1] for _, script in run_steps({"jobs": {job: spec}})
              for words in commands(script) if words[0] == "make"]
        for job, spec in workflow["jobs"].items()
    }  # fmt: skip
    assert made["lint"] == ["lint"] and made["test"] == ["test"] and made["gate"] == ["gate"]
    assert all(job["runs-on"] == "ubuntu-latest" for job in workflow["jobs"].values())
    upload = next(
        s for s in workflow["jobs"]["gate"]["steps"] if "upload-artifact" in s.get("uses", "")
    )
    assert upload["if"] == "always()"  # a failing gate keeps its evidence
    # the run directories make gate writes: the run, and the rerun that confirms an exit 1
    confirm = MAKE_VARIABLES["CONFIRM"].replace("$(CURRENT)", MAKE_VARIABLES["CURRENT"])
    assert upload["with"]["path"].split() == [MAKE_VARIABLES["CURRENT"], confirm]


def test_the_command_checker_catches_what_does_not_exist() -> None:
    """The checks above can fail: each kind of missing command is caught."""
    for script in (
        "make no-such-target",
        "make gate NO_SUCH_VARIABLE=1",
        ".venv/bin/commbench no-such-command",
        ".venv/bin/commbench export results --format github --no-such-option",
        "scripts/no-such-script.sh",
        "nvidia-smi topo -m",
    ):
        with pytest.raises(AssertionError):
            for words in commands(script):
                check_command(words)
    assert commands('A=1 make gate BASELINE="$X" && cat "$Y" >> "$Z" # note') == [
        ["make", "gate", "BASELINE=$X"],
        ["cat", "$Y"],
    ]
