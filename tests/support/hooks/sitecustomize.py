"""Real faults planted for tests and benchmarks (never part of commbench): a tunable
slowdown, a crash, a hang, a module that cannot be imported.

Put this directory first on PYTHONPATH. In every process:

- COMMBENCH_TEST_WITHOUT="NAME[,NAME...]": importing NAME (or finding it) fails as if it
  were not installed;

In the ranks of a sweep only (processes with RANK or SLURM_PROCID set; the launcher is
left alone):

- COMMBENCH_TEST_SLOWDOWN="NAME[:NAME...]=F": every `torch.distributed.NAME` call waits,
  after it returns, F times the mean of the last WINDOW calls on tensors of the same
  shapes in the same group (0 < F < 1). A timed sample is the mean of K calls, so each
  row's time grows by about F: F = 0.25 is a 1.25x slowdown of that collective, which
  the benchmarks measure from their own launches rather than assume. A call's time
  holds its wait for the peers, which their own waits lengthen, so the wait feeds on
  itself by a factor F per round: bounded below 1, unbounded from 1 on;
- COMMBENCH_TEST_SLOWDOWN="NAME[:NAME...]=+MS": every such call waits MS milliseconds
  more, the same on every rank (a planted difference far above a busy machine's noise);
- either way only calls on a tensor of at least MIN_ELEMENTS elements: the sweep's own
  control calls (a few float64 values each) are left alone; "...=F@N" slows only calls
  on a tensor of at least N elements (a slowdown of large, prefill-sized messages only).
  The wait is a sleep for all but its last SPIN_S, which is spun (a sleep alone adds the
  scheduler's latency, a spin alone takes the CPU the other ranks need);
- COMMBENCH_TEST_SETENV="NAME=VALUE": the rank sets NAME itself, an arm that changes
  more than it says;
- COMMBENCH_TEST_HANG=1: the rank never starts (a launch that hangs);
- COMMBENCH_TEST_CRASH="NAME@K": the K-th `torch.distributed.NAME` call raises a
  RuntimeError (a bug); "NAME@K=CODE": it ends the process with exit code CODE instead
  (a crash whose code could be read as something else); "NAME@K=hang": it never returns;
- COMMBENCH_TEST_DESTROY_HANGS=1: `torch.distributed.destroy_process_group()` of the
  whole world never returns, as tearing down NCCL's communicators can with a peer gone;
- COMMBENCH_TEST_HOLD=PATH: the first launch to start writes its identity (its ranks'
  parent) to PATH and runs; the ranks of every later launch wait while PATH names
  another launch, until PATH says "go" or is removed (a launch that is surely running
  when a test interrupts it).
"""

import collections
import os
import time

SPIN_S = 100e-6
WINDOW = 64
MIN_ELEMENTS = 64


def _tensors(args):
    for arg in args:
        if isinstance(arg, (list, tuple)):
            yield from _tensors(arg)
        elif hasattr(arg, "numel"):
            yield arg


def _wait(seconds):
    until = time.perf_counter() + seconds
    if seconds > SPIN_S:
        time.sleep(seconds - SPIN_S)
    while time.perf_counter() < until:
        pass


def _slowed(call, amount):
    windows = collections.defaultdict(lambda: collections.deque(maxlen=WINDOW))
    amount, _, smallest = amount.partition("@")
    smallest = max(int(smallest or 0), MIN_ELEMENTS)
    fixed = amount.startswith("+")
    value = float(amount) / 1000 if fixed else float(amount)
    if not fixed and not 0 < value < 1:
        raise ValueError(f"COMMBENCH_TEST_SLOWDOWN: a fraction F needs 0 < F < 1 (got {amount})")

    def slowed(*args, **kwargs):
        tensors = list(_tensors(args))
        if max((t.numel() for t in tensors), default=0) < smallest:
            return call(*args, **kwargs)
        start = time.perf_counter()
        result = call(*args, **kwargs)
        if fixed:
            _wait(value)
        else:
            recent = windows[(tuple(tuple(t.shape) for t in tensors), id(kwargs.get("group")))]
            recent.append(time.perf_counter() - start)
            _wait(value * sum(recent) / len(recent))
        return result

    return slowed


def _crashing(call, when):
    count, _, code = when.partition("=")
    calls = [0]

    def crashing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(count):
            while code == "hang":
                time.sleep(60)
            if code:
                os._exit(int(code))
            raise RuntimeError("a planted crash (COMMBENCH_TEST_CRASH)")
        return call(*args, **kwargs)

    return crashing


def _world_never_destroyed(call):
    def destroy(group=None):
        while group is None:
            time.sleep(60)
        return call(group)

    return destroy


def _hold(path):
    me = str(os.getppid())
    try:
        with open(path, "x") as claim:  # the first launch's rank to get here
            claim.write(me)
    except FileExistsError:
        pass
    while True:
        try:
            with open(path) as f:
                held = f.read()
        except FileNotFoundError:
            return
        if held in (me, "go"):
            return
        time.sleep(0.2)  # another launch holds it, or its first rank is still writing


class _Without:
    """A finder first on sys.meta_path that refuses the modules it names."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _install():
    without = os.environ.get("COMMBENCH_TEST_WITHOUT")
    if without:
        import sys

        sys.meta_path.insert(0, _Without(set(without.split(","))))
    if "RANK" not in os.environ and "SLURM_PROCID" not in os.environ:
        return
    while os.environ.get("COMMBENCH_TEST_HANG"):
        time.sleep(60)
    if os.environ.get("COMMBENCH_TEST_HOLD"):
        _hold(os.environ["COMMBENCH_TEST_HOLD"])
    name, sep, value = os.environ.get("COMMBENCH_TEST_SETENV", "").partition("=")
    if sep:
        os.environ[name] = value
    spec = os.environ.get("COMMBENCH_TEST_SLOWDOWN")
    crash = os.environ.get("COMMBENCH_TEST_CRASH")
    hangs = os.environ.get("COMMBENCH_TEST_DESTROY_HANGS")
    if not (spec or crash or hangs):
        return
    import torch.distributed as dist

    if spec:
        calls, _, amount = spec.partition("=")
        for call in calls.split(":"):
            setattr(dist, call, _slowed(getattr(dist, call), amount))
    if crash:
        call, _, when = crash.partition("@")
        setattr(dist, call, _crashing(getattr(dist, call), when))
    if hangs:
        dist.destroy_process_group = _world_never_destroyed(dist.destroy_process_group)


_install()
