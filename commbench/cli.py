"""The command line. Thin: parse, validate, call; each command imports what it needs.

Commands that only read results never import torch. The sweep's flags arrive as text
and the config's pydantic model converts them, so a bad flag and the same bad value in
a config file get the same one-line error, value included.
"""

from __future__ import annotations

import sys

import typer

import commbench
from commbench.commands import (
    ab,
    compare,
    configs,
    env,
    export,
    gate,
    history,
    plot,
    presets,
    report,
    runs,
    sweep,
)
from commbench.errors import ExitCode, UsageError


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"commbench {commbench.__version__}")
        raise typer.Exit()


def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """The app's own options: --version (and -h, --help)."""


def build_app(running: str | None = None) -> typer.Typer:
    """The command table, each command's function from commands/ (one module each).
    `running`: the command about to run; the sweep's settings flags are made for `sweep`
    and `ab` only when one of them runs, or when it is not known (None: every flag)."""
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits them
        help="Collective-communication microbenchmark: list vs tensor all_gather / reduce_scatter.",
    )
    app.callback()(_options)
    for name, command in (("sweep", sweep.COMMAND), ("ab", ab.COMMAND)):
        app.command(name=name)(command.with_settings(running in (None, name)))
    for function in (
        presets.presets,
        configs.configs,
        report.report,
        gate.gate,
        env.env,
        compare.compare,
        plot.plot,
        export.export,
        runs.runs,
    ):
        app.command()(function)
    app.add_typer(history.app, name="history")
    return app


app = build_app()  # every command with every flag: for --help listings and the tests


try:  # typer >= 0.22 parses with its own copy of click, older ones with click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException


def main() -> None:
    """Every bad input, the flags' own parsing included, ends as one line and exit code 2.
    Every rank says it: a launcher may kill the others before rank 0 gets to print."""
    args = sys.argv[1:] or ["--help"]
    running = next((arg for arg in args if not arg.startswith("-")), None)
    try:
        # no command (--help, --version): neither sweep's nor ab's settings flags are made
        sys.exit(build_app(running or "")(args=args, standalone_mode=False) or 0)
    except UsageError as err:
        print(f"commbench: error: {err}", file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    except ClickException as err:  # the flags' parser: unknown option, wrong type, ...
        print(f"commbench: error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Exception as err:  # a bug: its traceback, then its own exit code, never 1
        leave_on_bug(err)
    except KeyboardInterrupt:  # Ctrl-C while starting: a sweep's run stops on its own
        from commbench.sweep.launch import launched_here

        if not launched_here():  # `sweep --nproc` says it for its workers
            said = ": nothing was measured" if running == "sweep" else ""
            print(f"commbench: interrupted{said}", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)


def leave_on_bug(err: Exception) -> None:
    """An unexpected exception: the traceback for a bug report, one line saying what it is,
    exit INTERNAL (70), not 1, which says a check failed. A rank leaves at once: tearing
    its world down could wait for peers that are gone."""
    import traceback

    from commbench.sweep.launch import is_launched

    traceback.print_exc()
    print(
        f"commbench: internal error (a bug, please report it with the traceback above):"
        f" {type(err).__name__}: {err}",
        file=sys.stderr,
    )
    if is_launched():
        from commbench.sweep.faults import leave_at_once

        leave_at_once(ExitCode.INTERNAL)
    sys.exit(ExitCode.INTERNAL)
