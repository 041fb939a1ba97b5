"""The watchdog: a thread that stops scripts that overrun their time or recursion limits.

Provides ``Watchdog`` and ``CallWatch``. Uses ``LuaNative`` to request hooks and ``runner.Worker``
to abandon calls. The watchdog never runs script code: it asks the threads a context may be
running (its main thread and the coroutines listed in its ``slots`` table) to run their hook,
by writing only the hook fields of each ``lua_State``; the script's own thread then runs the hook
at its next call, return or function entry, arms every thread itself and raises the error (see
sandbox.lua). A thread that kept the request for a whole poll is looping inside one Lua function
without calls: only then is ``trap`` of its current frame set (see docs/security.md for why the
watchdog touches no other Lua memory). While every call is within budget it costs nothing inside
Lua. A call still running ``ABANDON_GRACE_S`` after twice its budget is stuck inside a C function,
where no hook fires: the watchdog abandons its worker (see _runner.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from engine_scripting._log import get_logger
from engine_scripting.engine._native import LUA_MASKCOUNT, WATCHDOG_MASK, LuaNative
from engine_scripting.engine._runner import Worker

_log = get_logger(__name__)

TIME_COUNT = 1
SAMPLE_COUNT = 2
# Polls after the deadline before hooks are forced back on (see LuaNative.allow_hooks)
ALLOW_HOOKS_AFTER_POLLS = 3
# A call's stack is first sampled this long after it began (then every poll): most calls end
# sooner and are never touched.
FIRST_SAMPLE_AFTER_S = 0.001
_IDLE_AFTER_S = 0.25
# A call this long past twice its budget is abandoned: its caller returns within 2x the budget
# plus 100 ms, with room left for the wake-up of the waiting thread on a loaded machine.
ABANDON_GRACE_S = 0.05
# ... unless its worker has not had ABANDON_GRACE_S of CPU time since the stop was requested:
# a call stuck in C keeps its core busy, one that waits for a core on an overloaded machine (to
# reach the hook that stops it) does not. It is abandoned at the latest this long past four
# times its budget.
OVERLOADED_GRACE_S = 0.5
# A call past its deadline is stopped once its worker has had this share of its budget in CPU
# time: a call that waited for a core on an overloaded machine is not stopped for the wait
# (scripts of a busy game would be disabled for the machine's load), up to the same latest
# time as abandonment.
SPENT_SHARE = 0.8


@dataclass(slots=True, eq=False)
class CallWatch:
    """Per-context record of the call in progress (one per context, reused across calls)."""

    main_state: int
    slots_table: int
    slot_capacity: int
    budget_s: float
    deep_slots: int
    started: float = 0.0        # when the call in progress began (set by the caller's thread)
    cpu_started: float = 0.0    # the worker's CPU time when the watchdog first saw the call
    sampled_from: float = -1.0  # the `started` that sample_at belongs to
    sample_at: float = 0.0
    stopping: bool = False
    sampled: bool = False
    polls_stopping: int = 0
    worker: Worker | None = None  # the worker the call runs on (None: nothing to abandon)
    abandoned: bool = False
    stop_cpu: float | None = None  # the worker's CPU time when the watchdog first saw the stop


class Watchdog:
    """Arms the hook of calls that pass their deadline or build too deep a stack.

    Args:
        native: the C API bindings.
        poll_interval_s: how often active calls are checked; a runaway call is stopped within
            about this long after its deadline.
    """

    def __init__(self, native: LuaNative, poll_interval_s: float = 0.001) -> None:
        self._native = native
        self._poll_interval_s = poll_interval_s
        self._active: dict[CallWatch, CallWatch] = {}  # keyed by identity (eq=False)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._sleeping = True
        self._closed = False
        self._thread: threading.Thread | None = None

    def begin(self, watch: CallWatch) -> None:
        """Start watching a call of the context that owns ``watch``."""
        watch.started = time.perf_counter()  # the watchdog derives the deadline from it
        if watch.stopping or watch.sampled or watch.abandoned:
            watch.stopping = watch.sampled = watch.abandoned = False
            watch.polls_stopping = 0
            watch.stop_cpu = None
        self._active[watch] = watch
        if self._sleeping:
            self._start()

    def end(self, watch: CallWatch) -> bool:
        """Stop watching; True when a hook was armed and the context must be cleaned up.

        Takes the lock the watchdog holds while it checks calls: once this returns, no check of
        this call is running, and none will arm its threads.
        """
        lock = self._lock
        lock.acquire()
        try:
            self._active.pop(watch, None)   # gone already when the call was abandoned
        finally:
            lock.release()
        return watch.stopping or watch.sampled

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._closed = True
        self._wake.set()

    def _start(self) -> None:
        self._sleeping = False
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="engine-scripting-watchdog", daemon=True
            )
            self._thread.start()
        else:
            self._wake.set()

    def _run(self) -> None:
        idle_since: float | None = None
        # closing lets the calls still running be stopped first: a caller waits for them
        while not (self._closed and not self._active):
            now = time.perf_counter()
            with self._lock:
                for watch in list(self._active.values()):
                    self._check(watch, now)
            if self._active:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since > _IDLE_AFTER_S:
                self._sleeping = True
                if self._active:  # a call began while we decided to sleep
                    self._sleeping = False
                    continue
                self._wake.wait()
                self._wake.clear()
                idle_since = None
                continue
            time.sleep(self._poll_interval_s)

    @staticmethod
    def _spent(watch: CallWatch, overrun: float) -> bool:
        """Whether a call past its deadline has used its budget (see SPENT_SHARE), rather than
        waited for a core."""
        worker = watch.worker
        if worker is None or overrun >= 3 * watch.budget_s + OVERLOADED_GRACE_S:
            return True
        cpu = worker.cpu_time()
        return cpu is None or cpu - watch.cpu_started >= SPENT_SHARE * watch.budget_s

    @staticmethod
    def _stuck(watch: CallWatch, worker: Worker, overrun: float) -> bool:
        """Whether a call past its abandon time is stuck, not starved of CPU (see
        OVERLOADED_GRACE_S): it kept running on a core since the stop was requested."""
        if overrun >= 3 * watch.budget_s + OVERLOADED_GRACE_S:
            return True
        cpu = worker.cpu_time()
        return cpu is None or watch.stop_cpu is None or cpu - watch.stop_cpu >= ABANDON_GRACE_S

    def _check(self, watch: CallWatch, now: float) -> None:
        started = watch.started
        if watch.sampled_from != started:
            watch.sampled_from = started
            watch.sample_at = started + FIRST_SAMPLE_AFTER_S
            # read here, not by the worker at each call's start (a system call per call): it
            # counts at most the poll's delay less CPU time against the budget
            worker = watch.worker
            cpu = worker.cpu_time() if worker is not None else None
            watch.cpu_started = cpu if cpu is not None else 0.0
        deadline = started + watch.budget_s
        if now < watch.sample_at and now < deadline:
            return
        native = self._native
        threads = list(dict.fromkeys(
            (watch.main_state, *native.slot_threads(watch.slots_table, watch.slot_capacity))))
        if now >= deadline and (watch.stopping or self._spent(watch, now - deadline)):
            worker = watch.worker
            if watch.stop_cpu is None and worker is not None:
                watch.stop_cpu = worker.cpu_time()
            if (worker is not None and now >= deadline + watch.budget_s + ABANDON_GRACE_S
                    and self._stuck(watch, worker, now - deadline) and worker.abandon()):
                watch.abandoned = True
                del self._active[watch]
                _log.warning("watchdog.abandoned", overrun_ms=(now - deadline) * 1e3)
            if not watch.stopping:
                watch.stopping = True
                _log.debug("watchdog.deadline_passed", overrun_ms=(now - deadline) * 1e3)
            watch.polls_stopping += 1
            force = watch.polls_stopping > ALLOW_HOOKS_AFTER_POLLS
            for thread in threads:
                if force:
                    native.allow_hooks(thread)
                self._request(thread, TIME_COUNT)
        elif now >= watch.sample_at and native.stack_sampling and not watch.stopping:
            watch.sample_at = now + self._poll_interval_s
            for thread in threads:
                if native.stack_slots(thread) > watch.deep_slots:
                    watch.sampled = True
                    self._request(thread, SAMPLE_COUNT)

    def _request(self, thread: int, count: int) -> None:
        """Ask ``thread`` to run its hook with ``count``. A thread the hook already armed itself
        (for a stop) is left alone; one that kept the same request since the last poll has run
        no call, return or function entry since, so it loops inside one Lua function: its
        current frame gets ``trap``."""
        native = self._native
        state = native.hook_state(thread)
        if state == (WATCHDOG_MASK, count):
            native.trap_current(thread, count)
        elif state != (LUA_MASKCOUNT, TIME_COUNT):
            native.request_stop(thread, count)
