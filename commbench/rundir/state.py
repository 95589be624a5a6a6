"""One judgement of a run directory's state, as every reader sees it: `commbench runs`
lists what `read_run` (and so report, compare, gate, export) would say of each run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from commbench.errors import UsageError
from commbench.rundir.integrity import Unfinished, resume_command
from commbench.rundir.lock import holder
from commbench.rundir.reader import Run, read_run

COMPLETE, UNFINISHED, WRITING, DAMAGED = "complete", "unfinished", "being written", "damaged"


@dataclass(frozen=True)
class RunState:
    state: str  # COMPLETE, UNFINISHED, WRITING or DAMAGED
    detail: str  # what to do, or what is wrong ("" when complete)
    run: Run | None  # the run as readers read it (None where they refuse it)


def run_state(path: Path) -> RunState:
    """The run as a reader finds it: complete; unfinished (stopped, killed, or cut off with
    its files whole: resumable); being written by a live sweep; or damaged (a reader
    refuses it: a torn or short file, rows a finished run lacks). A meta.json that cannot
    be read raises the reader's UsageError."""
    held = holder(path)
    if held is not None and held.alive():
        return RunState(WRITING, f"by pid {held.pid} on {held.host} since {held.since}", None)
    try:
        run = read_run(path)
    except Unfinished:  # no rows yet
        return RunState(UNFINISHED, f"{resume_command(path)} measures the rest", None)
    except UsageError as err:
        return RunState(DAMAGED, str(err), None)
    if run.incomplete:
        return RunState(UNFINISHED, f"{resume_command(path)} measures the rest", run)
    return RunState(COMPLETE, "", run)
