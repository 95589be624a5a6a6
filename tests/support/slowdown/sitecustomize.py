"""A real, tunable slowdown for A/B tests and benchmarks (never part of commbench).

Put this directory first on PYTHONPATH in an arm's environment. In the ranks of a sweep
(processes with RANK set; the launcher is left alone):

- COMMBENCH_TEST_SLOWDOWN="NAME[:NAME...]=F": every `torch.distributed.NAME` call waits,
  after it returns, F times the shortest of the last WINDOW calls on tensors of the same
  shapes in the same group (the call's own time,
  without waiting for a peer: a wait proportional to each call's whole time would feed
  on the peer's wait and grow without bound once F >= 1). A sleep for all but the last
  SPIN_S, which is spun (a sleep alone adds the scheduler's latency, a spin alone takes
  the CPU the other ranks need);
- COMMBENCH_TEST_SETENV="NAME=VALUE": the rank sets NAME itself, an arm that changes
  more than it says.
"""

import collections
import os
import time

SPIN_S = 100e-6
WINDOW = 64


def _slowed(call, fraction):
    windows = collections.defaultdict(lambda: collections.deque(maxlen=WINDOW))

    def slowed(*args, **kwargs):
        shapes = tuple(tuple(a.shape) for a in args if hasattr(a, "shape"))
        recent = windows[(shapes, id(kwargs.get("group")))]
        start = time.perf_counter()
        result = call(*args, **kwargs)
        recent.append(time.perf_counter() - start)
        until = time.perf_counter() + fraction * min(recent)
        if until - time.perf_counter() > SPIN_S:
            time.sleep(until - time.perf_counter() - SPIN_S)
        while time.perf_counter() < until:
            pass
        return result

    return slowed


def _install():
    if "RANK" not in os.environ:
        return
    name, sep, value = os.environ.get("COMMBENCH_TEST_SETENV", "").partition("=")
    if sep:
        os.environ[name] = value
    spec = os.environ.get("COMMBENCH_TEST_SLOWDOWN")
    if spec:
        import torch.distributed as dist

        calls, _, fraction = spec.partition("=")
        for call in calls.split(":"):
            setattr(dist, call, _slowed(getattr(dist, call), float(fraction)))


_install()
