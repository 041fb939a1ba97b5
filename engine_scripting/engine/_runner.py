"""The backstop: script calls run on a worker thread that the host waits on with a deadline.

Provides ``Runner`` (one per engine), ``Worker`` and ``Abandoned``. Uses nothing else of the
package: the watchdog decides when a call is stuck and calls ``Worker.abandon``.

A hook can stop a script only between VM instructions. A C function that runs long inside one
instruction (a table rehash over colliding keys, a path nobody found yet) would hold its caller's
thread for as long as it runs. So every call into a limited context runs on a worker thread, and
the caller waits. When a call is still running well past its budget, the watchdog abandons the
worker: the caller is released at once, every context with a call open on that worker is dead
(it refuses calls), and every host callback from that worker refuses to run. The worker itself
cannot be stopped: it finishes its C function, the hook armed at the deadline stops the script,
and ``Abandoned`` unwinds the thread without touching anything of the host.

One handoff costs a thread wake-up each way (about 10 us through pipes, which wake a thread
faster than Python's locks do here), so the ScriptSystem hands a whole tick over at once
(``run_each``), and calls made on the worker run inline.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from engine_scripting._log import get_logger
from engine_scripting.errors import CallAbandoned

Item = TypeVar("Item")


class Abandoned(BaseException):
    """Unwinds an abandoned worker's thread. Only ever raised on that thread; host code on the
    way up must not catch it (it derives from BaseException for that reason)."""


class Worker:
    """One worker thread and the state the watchdog and host callbacks share with it.

    ``gate`` is held by host callbacks while they run (re-entrant, so a callback may call into
    another context) and by the watchdog, for good, once it abandons the worker: callbacks take
    it without blocking and refuse when they cannot.
    """

    def __init__(self, name: str, local: threading.local | None = None) -> None:
        self._local = local   # the runner's: each worker thread names its worker there
        self.gate = threading.RLock()
        self.abandoned = False
        self.open_calls: list[OpenCall] = []  # contexts with a call in progress, innermost last
        self.broken = False                   # the waiting thread gave up (e.g. KeyboardInterrupt)
        self._go_read, self._go_write = os.pipe()
        self._done_read, self._done_write = os.pipe()
        self._job: Callable[[], object] | None = None
        self._result: object = None
        self._error: BaseException | None = None
        self._cpu_clock: int | None = None    # the thread's CPU-time clock, once it runs
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def run(self, job: Callable[[], object]) -> tuple[bool, object]:
        """Run ``job`` on this worker and wait; (False, None) when the worker was abandoned.

        The job's exception, if any, is raised here."""
        self._job = job
        os.write(self._go_write, b"g")
        try:
            os.read(self._done_read, 1)
        except BaseException:
            self.broken = True   # the job runs on unwaited: this worker is not used again
            raise
        if self.abandoned:
            return False, None
        error, self._error = self._error, None
        if error is not None:
            raise error
        result, self._result = self._result, None
        return True, result

    def abandon(self) -> bool:
        """Give up on the call in progress (the watchdog's thread). False when a host callback
        runs on the worker right now: it is host code, and is let finish (the next poll retries)."""
        if self.abandoned:
            return True
        if not self.gate.acquire(blocking=False):
            return False
        self.abandoned = True   # the gate stays held: every later callback refuses
        os.write(self._done_write, b"a")
        return True

    def stop(self) -> None:
        """End the thread once it is idle (the runner is closing)."""
        self._job = None
        os.write(self._go_write, b"s")

    def cpu_time(self) -> float | None:
        """CPU seconds the worker's thread has used, where the platform tells (Linux, macOS)."""
        clock = self._cpu_clock
        if clock is None:
            return None
        try:
            return time.clock_gettime(clock)
        except OSError:   # the thread has ended
            return None

    def _loop(self) -> None:
        if self._local is not None:
            self._local.worker = self
        if hasattr(time, "pthread_getcpuclockid"):
            self._cpu_clock = time.pthread_getcpuclockid(threading.get_ident())
        try:
            self._serve()
        finally:
            # nothing writes to these any more: the waiting side has gone on (stopped,
            # abandoned), and the watchdog never abandons a worker twice
            for fd in (self._go_read, self._go_write, self._done_read, self._done_write):
                os.close(fd)

    def _serve(self) -> None:
        while True:
            os.read(self._go_read, 1)
            job = self._job
            if job is None:
                return
            try:
                self._result = job()
            except Abandoned:
                return      # whoever waited has gone on; nothing of the host is touched
            except BaseException as error:  # handed to the waiting thread, raised there
                self._error = error
            self._job = job = None  # an idle worker must not keep the last job's objects
            # finishing and abandoning exclude each other: the watchdog abandons only while it
            # holds the gate, and keeps it from then on
            if not self.gate.acquire(blocking=False):
                return
            try:
                if self.abandoned:
                    return
                os.write(self._done_write, b"d")
            finally:
                self.gate.release()


class Runner:
    """Runs host work that calls into limited contexts on a worker thread (see the module
    docstring). One per engine; a new worker replaces an abandoned one."""

    def __init__(self, name: str = "engine-scripting-runner") -> None:
        self._name = name
        self._worker: Worker | None = None
        self._local = threading.local()   # .worker: the worker the thread is, on its threads

    def current(self) -> Worker | None:
        """The worker the calling thread is, or None when it is not this runner's current one
        (an abandoned worker is not: calls made on it go to a new one)."""
        worker = self.thread_worker()
        return worker if worker is self._worker else None

    def thread_worker(self) -> Worker | None:
        """The worker the calling thread is, abandoned or not; None for any other thread."""
        worker: Worker | None = getattr(self._local, "worker", None)
        return worker

    def run(self, job: Callable[[], Any], on_abandoned: Callable[[Worker], Any]) -> Any:
        """Run ``job`` on a worker and return its result (inline when already on one).

        When the worker is abandoned, ``on_abandoned(worker)`` runs on the calling thread and
        its exception (it should raise one) propagates; its return value is returned otherwise.
        """
        if self.current() is not None:
            return job()
        worker = self._take_worker()
        finished, result = worker.run(job)
        if finished:
            return result
        self._worker = None
        return on_abandoned(worker)

    def run_each(self, items: Sequence[Item], job: Callable[[Item], object],
                 on_abandoned: Callable[[Item, Worker], None]) -> None:
        """``job(item)`` for every item, in order, on a worker: one handoff for all of them.

        When the worker is abandoned during item k, ``on_abandoned(item_k, worker)`` runs on the
        calling thread, and the items after k go on on a new worker."""
        if self.current() is not None:
            for item in items:
                job(item)
            return
        start = 0
        while start < len(items):
            position = [start]

            def batch(first: int = start, at: list[int] = position) -> None:
                for index in range(first, len(items)):
                    at[0] = index
                    job(items[index])

            worker = self._take_worker()
            finished, _ = worker.run(batch)
            if finished:
                return
            self._worker = None
            on_abandoned(items[position[0]], worker)
            start = position[0] + 1

    def close(self) -> None:
        """End the idle worker thread. An abandoned one ends by itself when its call returns."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def _take_worker(self) -> Worker:
        worker = self._worker
        if worker is None or worker.abandoned or worker.broken:
            worker = self._worker = Worker(self._name, self._local)
        return worker


class OpenCall(Protocol):
    """What a worker knows of a context with a call open on it."""

    name: str

    def mark_dead(self) -> None:
        """The call was abandoned: the context must refuse every call from now on."""


def abandon_open_calls(worker: Worker, context: OpenCall | None = None) -> CallAbandoned:
    """Mark dead every context with a call open on the abandoned ``worker`` (and ``context``,
    whose call was waited for); return the error that says so, named after the outermost."""
    for dead in (*worker.open_calls, *([context] if context is not None else [])):
        dead.mark_dead()
    name = context.name if context is not None else (
        worker.open_calls[0].name if worker.open_calls else "script")
    get_logger(__name__).warning("script.call_abandoned", script=name)
    return CallAbandoned(
        f"{name}: time limit exceeded inside a C function that no hook can interrupt; the call"
        " was abandoned and the context is dead",
        limit_type="time", script=name,
    )
