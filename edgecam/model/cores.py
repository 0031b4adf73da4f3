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

Worker threads are found as the threads that appear while the interpreter is made
(``new_threads``); elsewhere than Linux nothing is pinned."""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, List, Set, TypeVar

log = logging.getLogger("edgecam.model")

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
    me = threading.get_native_id()
    try:
        os.sched_setaffinity(me, {cores[0]})
        for tid, core in zip(workers, cores[1:]):
            os.sched_setaffinity(tid, {core})
    except OSError as exc:        # a worker gone, or a cgroup that forbids it: leave it to the scheduler
        log.debug("interpreter threads not pinned: %s", exc)
        for tid in (me, *workers):
            try:
                os.sched_setaffinity(tid, allowed)
            except OSError:
                pass
        return False
    return True
