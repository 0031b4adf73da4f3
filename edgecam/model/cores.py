"""Where the interpreter's threads run (Linux): the thread that calls invoke() on one core and
each of XNNPACK's worker threads on a core of its own, so that no two of them take turns on one
core while another sits idle.

Why, measured (`edgecam bench` live, v1_ssd, 2 threads, a 2-core VM): left to the scheduler,
XNNPACK's worker thread, woken at each invoke(), was placed on the invoking thread's own core in
about two frames of three (an idle virtual CPU is descheduled by the host and looks busy to the
guest, so a wakeup goes to the waker's core), and invoke() took 7.5 ms instead of 4.4 ms: two
threads on one core. The classic loop escaped it by luck: OpenCV's own threads had just run
on the other core. Pinned, every invoke() takes the 4.4 ms. A worker whose core is busy with
another program does not stall invoke(): XNNPACK's thread pool hands its share to a thread that
is free.

But a pinned thread cannot move to a free core, and invoke() waits for every thread at each
layer: with other programs keeping the cores busy (80% of the machine), pinned threads
measured a frame age of 13.4 ms p50 and 306 ms max against the classic loop's 10.0 and 32.
:class:`Placement` therefore pins only while other programs leave the cores quiet, and hands
the threads back to the scheduler while they do not (checked every 2 s from /proc/stat).

Worker threads are found as the threads that appear while the interpreter is made and runs
once (``new_threads`` around engine.make_started: tflite-runtime 2.14 starts its worker at the
first invoke, and a thread started by the pinned invoking thread shares its core); elsewhere
than Linux nothing is pinned."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, List, Optional, Protocol, Set, Tuple, TypeVar

log = logging.getLogger("edgecam.model")

CHECK_S = 2.0         # how often Placement looks at the machine's load
UNPIN_ABOVE = 0.4     # other programs' share of all CPU time above which the threads are unpinned
PIN_BELOW = 0.2       # ... and below which they are pinned (again)

T = TypeVar("T")


def _tasks() -> Set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except (OSError, ValueError):
        return set()


def new_threads(make: Callable[[], T]) -> "tuple[T, List[int]]":
    """``make()``'s value, and the ids of the threads it started (the interpreter's workers)."""
    before = _tasks()
    value = make()
    return value, sorted(_tasks() - before)


def pin(workers: List[int]) -> bool:
    """Pin the calling thread (the one that will call invoke()) to the first core it may use and
    each of ``workers`` to one of the others. False, and nothing pinned, where there are not
    enough cores for one each (or no way to pin)."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    allowed = os.sched_getaffinity(os.getpid())      # the process's cores (its main thread's)
    cores = sorted(allowed)
    if not workers or len(cores) < len(workers) + 1:
        return False
    try:
        os.sched_setaffinity(threading.get_native_id(), {cores[0]})
        for tid, core in zip(workers, cores[1:]):
            os.sched_setaffinity(tid, {core})
    except OSError as exc:        # a worker gone, or a cgroup that forbids it: leave it to the scheduler
        log.debug("interpreter threads not pinned: %s", exc)
        unpin(workers)
        return False
    return True


def unpin(workers: List[int]) -> None:
    """The calling thread and ``workers`` back on every core the process may use."""
    if not hasattr(os, "sched_setaffinity"):
        return
    allowed = os.sched_getaffinity(os.getpid())
    for tid in (threading.get_native_id(), *workers):
        try:
            os.sched_setaffinity(tid, allowed)
        except OSError:
            pass


def cpu_ticks() -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class OtherLoad:
    """Other programs' share of the machine's CPU time since the last call (this process's own
    time taken out); None while unknown."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = (cpu_ticks(), _own_cpu())

    def share(self) -> Optional[float]:
        (t0, own0), now = self.last, (cpu_ticks(), _own_cpu())
        self.last = now
        if t0 is None or now[0] is None or now[0][1] - t0[1] < self.hz // 2:
            return None
        busy, total = (now[0][0] - t0[0]) / self.hz, (now[0][1] - t0[1]) / self.hz
        return max(0.0, busy - (now[1] - own0)) / total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


class Threaded(Protocol):
    """An interpreter as placement sees it (engine.py's, not imported: it imports this file)."""

    workers: List[int]        # its worker threads' ids


class Placement:
    """The live inference thread's side of pinning: its model's threads pinned a core each
    while the machine is otherwise quiet, left to the scheduler while other programs keep the
    cores busy (see above); re-pinned for a new model."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.pinned = enabled, False
        self.engine: Optional[Threaded] = None
        self.load = OtherLoad()
        self.due = 0.0

    def update(self, engine) -> None:
        """Called on the inference thread before each frame (cheap but every CHECK_S)."""
        now = time.monotonic()
        if not self.enabled or (engine is self.engine and now < self.due):
            return
        self.due = now + CHECK_S
        other = self.load.share()
        quiet = other is None or other < (UNPIN_ABOVE if self.pinned else PIN_BELOW)
        if self.pinned and self.engine is not None and (not quiet or engine is not self.engine):
            unpin(self.engine.workers)
            self.pinned = False
            log.debug("interpreter threads unpinned (other load %s)", other)
        if quiet and not self.pinned:
            self.pinned = pin(engine.workers)
        self.engine = engine
