"""What the documentation shows exists: every relative link resolves (to a file, and to a
heading where it names one), every `commbench SUBCOMMAND` shown is a real subcommand and
every flag shown with it one that subcommand accepts, every `make TARGET` a Makefile
target (and every VAR=value a Makefile variable), every repository path shown a file.
And every section of docs/ the code cites (`docs/method.md, "Timing"`) is there, and every
Python file of the repository named anywhere in the code or the docs, prose included."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest
import typer.main
from support.paths import REPO

from commbench.cli import app

PAGES = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    REPO / "CHANGELOG.md",
    *sorted((REPO / "docs").glob("*.md")),
]
MAKEFILE = (REPO / "Makefile").read_text()
MAKE_TARGETS = set(re.findall(r"^([A-Za-z][\w.-]*):(?!=)", MAKEFILE, re.MULTILINE))
MAKE_VARIABLES = set(re.findall(r"^([A-Z_]+) *[?:]?=", MAKEFILE, re.MULTILINE))

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
COMMBENCH = re.compile(r"(?:^|[\s/])commbench\s+([a-z][\w-]*)(.*)")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][\w-]*)(.*)")
# Paths in the repository a page names in code: they must exist (a `*` must match).
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:benchmarks|scripts|configs|commbench|tests|docs|results/baselines"
    r"|\.github/workflows|\.ci)/[\w./*-]*)"
)
# A citation in code, comments included: docs/PAGE.md, "Section" (wrapped lines too).
CITATION = re.compile(r'docs/([\w-]+\.md),?[\s#]*"([^"]+)"')
SEPARATORS = ("&&", "||", ";", "|", "#", ")")
COMMENT = re.compile(r"(?:^|\s)#.*")


def subcommands() -> dict[str, set[str]]:
    """Every subcommand of the real CLI (a group's as `history pin`) and the options it
    accepts (--help included: click adds it to every command, not as one of its params)."""

    def options(command: typer.core.TyperCommand) -> set[str]:
        return {"--help"} | {o for p in command.params for o in p.opts if o.startswith("-")}

    found = {}
    for name, command in typer.main.get_command(app).commands.items():
        found[name] = options(command)
        for sub, inner in getattr(command, "commands", {}).items():
            found[f"{name} {sub}"] = options(inner)
    return found


SUBCOMMANDS = subcommands()


def split_code(text: str) -> tuple[str, list[str]]:
    """The page without its fenced blocks (prose, for links), and every piece of code in
    it: fenced blocks line by line (continuations joined, comments cut) and inline code."""
    code = []
    for block in FENCE.findall(text):  # a shell comment is prose
        code += [COMMENT.sub("", line) for line in block.replace("\\\n", " ").splitlines()]
    prose = FENCE.sub("", text)
    code += INLINE_CODE.findall(prose)
    return INLINE_CODE.sub("", prose), code


def slug(heading: str) -> str:
    """The anchor mkdocs (Python-Markdown's toc) gives a heading, as GitHub does too."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", page.read_text()))}


def link_problems(page: Path, prose: str) -> list[str]:
    problems = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


def words(rest: str) -> list[str]:
    """The words of a command's arguments, up to the end of the command."""
    for separator in SEPARATORS:
        rest = rest.split(separator, 1)[0]
    try:
        found = shlex.split(rest)
    except ValueError:  # an unbalanced quote in an excerpt
        found = rest.split()
    return [word.strip("[]") for word in found]


def command_problems(code: list[str]) -> list[str]:
    problems = []
    for line in code:
        for name, rest in COMMBENCH.findall(line):
            if name not in SUBCOMMANDS:
                problems.append(f"commbench {name}: no such subcommand")
                continue
            said = words(rest)
            if said and f"{name} {said[0]}" in SUBCOMMANDS:  # a group's: `history pin`
                name, said = f"{name} {said[0]}", said[1:]
            for word in said:
                flag = word.split("=", 1)[0]
                if flag.startswith("--") and flag not in SUBCOMMANDS[name]:
                    problems.append(f"commbench {name} {flag}: no such option")
        for target, rest in MAKE.findall(line):
            if target not in MAKE_TARGETS:
                problems.append(f"make {target}: no such target")
            for word in words(rest):
                variable = word.split("=", 1)[0]
                if "=" in word and variable not in MAKE_VARIABLES:
                    problems.append(f"make {target} {variable}=: no such variable")
        for path in REPO_PATH.findall(line):
            path = path.rstrip(".")
            if not (list(REPO.glob(path)) if "*" in path else (REPO / path).exists()):
                problems.append(f"{path}: no such file in the repository")
    return problems


def problems(page: Path, text: str | None = None) -> list[str]:
    prose, code = split_code(page.read_text() if text is None else text)
    return link_problems(page, prose) + command_problems(code)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_and_command_a_page_shows_exists(page: Path) -> None:
    assert problems(page) == []


def citation_problems(text: str) -> list[str]:
    return [
        f"docs/{page}, {section!r}: no such section"
        for page, section in CITATION.findall(text)
        if not (REPO / "docs" / page).exists() or slug(section) not in anchors(REPO / "docs" / page)
    ]


def test_every_section_the_code_cites_exists() -> None:
    sources = [
        *(REPO / "commbench").rglob("*.py"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "benchmarks").glob("*.py"),
        REPO / "Makefile",
    ]
    cited = [p for p in sources if p != Path(__file__) and CITATION.search(p.read_text())]
    assert cited  # the code does cite the docs
    assert [problem for path in cited for problem in citation_problems(path.read_text())] == []
    assert citation_problems('(docs/method.md, "No such section")')  # and this can fail


def test_the_checks_catch_what_does_not_exist() -> None:
    """Each kind of thing that does not exist is caught (the checks above can fail)."""
    page = REPO / "docs" / "usage.md"
    broken = {
        "[a](no-such-page.md)": "no such file",
        "[a](method.md#no-such-heading)": "no heading #no-such-heading",
        "[a](#no-such-heading)": "no heading #no-such-heading",
        "`commbench no-such-command`": "no such subcommand",
        "```sh\ncommbench gate A B --no-such-option 1\n```\n": "no such option",
        "```sh\ntorchrun -m commbench sweep --tokens 8 \\\n  --no-such-flag\n```\n": "no-such-flag",
        "`make no-such-target`": "no such target",
        "`make gate NO_SUCH_VARIABLE=1`": "no such variable",
        "`benchmarks/no-such-script.py`": "no such file in the repository",
    }
    for text, expected in broken.items():
        found = problems(page, text)
        assert len(found) == 1 and expected in found[0], (text, found)
    fine = (
        "[a](method.md#timing) [b](../README.md) [c](https://example.com/x.md)\n"
        "`commbench sweep --nproc 2 --out=run`, `make run NPROC=2`, `configs/*.toml`"
    )
    assert problems(page, fine) == []


# A Python file of the repository, named in code, a comment, a docstring or prose.
PYTHON_PATH = re.compile(r"(?<![\w./-])((?:commbench|tests|benchmarks|scripts)/[\w/.-]*?\.py)\b")
NAMING = [  # CHANGELOG.md names files as they were then; this file names missing ones
    *(p for p in (REPO / "commbench").rglob("*.py")),
    *(p for p in (REPO / "tests").rglob("*.py") if p != Path(__file__)),
    *(REPO / "benchmarks").glob("*.py"),
    *(REPO / "scripts").glob("*"),
    REPO / "Makefile",
    *(page for page in PAGES if page.name != "CHANGELOG.md"),
]


def missing_python_files(text: str) -> list[str]:
    return sorted({path for path in PYTHON_PATH.findall(text) if not (REPO / path).is_file()})


def test_every_python_file_named_in_code_or_docs_exists() -> None:
    named = {
        str(path.relative_to(REPO)): missing
        for path in NAMING
        if (missing := missing_python_files(path.read_text()))
    }
    assert named == {}
    assert missing_python_files("as commbench/oom.py does (see tests/no_such.py)") == [
        "commbench/oom.py",
        "tests/no_such.py",
    ]
    assert missing_python_files("commbench/analysis/gate/judge.py, commbench/cli.py") == []


def test_contributings_layout_names_every_package_folder() -> None:
    layout = (REPO / "CONTRIBUTING.md").read_text().split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"^(commbench/[\w/]+/)", layout, re.MULTILINE))
    folders = {
        f"{path.parent.relative_to(REPO)}/" for path in (REPO / "commbench").rglob("__init__.py")
    } - {"commbench/"}
    assert folders - named == set()  # every package folder is described
    assert named - folders - {"commbench/configs/"} == set()  # and no folder that is gone


def test_the_readme_exit_code_table_has_every_code_there_is() -> None:
    """One table for every command: each code commbench exits with, and no other."""
    from commbench.errors import ExitCode

    readme = (REPO / "README.md").read_text()
    blocks = readme.split("## Exit codes", 1)[1].split("\n\n")
    table = next(block for block in blocks if block.startswith("|"))
    codes = {int(line.split("|")[1]) for line in table.splitlines()[2:]}
    assert codes == {int(code) for code in ExitCode}


def test_the_gates_options_table_states_its_default_tolerances() -> None:
    from commbench.analysis.gate.judge import AGGREGATE_TOLERANCE, ROW_TOLERANCE

    said = ", ".join(
        f"{backend} {ROW_TOLERANCE[backend]:.0%} and {AGGREGATE_TOLERANCE[backend]:.0%}"
        for backend in ("nccl", "gloo")
    )
    assert f"default per backend: {said} |" in (REPO / "docs" / "gate.md").read_text()
