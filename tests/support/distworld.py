"""Start real multi-process gloo worlds for tests (torch.multiprocessing, spawn)."""

from __future__ import annotations

import os
import queue as queue_module
import socket
import traceback
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, size: int, port: int, fn: Callable, args: tuple, queue: Any) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    from commbench.sweep.world import close_world, init_world

    try:
        world = init_world("gloo", timeout_s=60)
        queue.put((rank, True, fn(world, *args)))
    except BaseException:
        queue.put((rank, False, traceback.format_exc()))
    finally:
        close_world()


def run_world(size: int, fn: Callable, *args: Any, timeout: float = 180) -> list[Any]:
    """Run `fn(world, *args)` on `size` gloo ranks; return every rank's result, by rank."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(target=_entry, args=(rank, size, port, fn, args, queue)) for rank in range(size)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = sorted(queue.get(timeout=timeout) for _ in procs)
    except queue_module.Empty:
        raise AssertionError(f"a rank did not finish within {timeout}s") from None
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    errors = [value for _, ok, value in outcomes if not ok]
    assert not errors, errors[0]
    return [value for _, _, value in outcomes]


def _each(world, fns: dict[str, Callable]) -> dict[str, tuple[bool, Any]]:
    """Each of `fns` in turn on one world: name -> (True, result) or (False, traceback)."""
    done = {}
    for name, fn in fns.items():
        try:
            done[name] = (True, fn(world))
        except Exception:
            done[name] = (False, traceback.format_exc())
    return done


class SharedWorld:
    """One gloo world that runs several tests' functions, one after the other: a world
    costs every rank an interpreter and `import torch`, the functions milliseconds.
    `world(name)` is that function's result on every rank, or its first rank's error."""

    def __init__(self, size: int, fns: dict[str, Callable], timeout: float = 300) -> None:
        self.per_rank = run_world(size, _each, fns, timeout=timeout)

    def __call__(self, name: str) -> list[Any]:
        outcomes = [done[name] for done in self.per_rank]
        errors = [value for ok, value in outcomes if not ok]
        assert not errors, errors[0]
        return [value for _, value in outcomes]
