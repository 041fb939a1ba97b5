"""HostCalls: ``system.call``, the host calling one script instance's function between ticks.

A call runs like a tick of one callback: in one batch of the script's context (world.lua's
``call`` trampoline) on the engine's worker thread, under the script's permissions and limits
(time, memory, recursion), with the world API as in its callbacks (``world.*``, ``print``, its
spawn budget of the last tick), and the batch's buffered component writes written back after
it. Its errors are the script's: logged, put on the console, recorded in the manager's status
as a tick's errors are (a PermissionDenied disables the script; ``max_consecutive_failures``
counts failing calls as failing ticks) and raised to the caller. A successful call is not a
tick: it neither counts in the script's timing statistics nor clears its failure count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import esper

from engine_scripting.ecs._components import Script
from engine_scripting.ecs._host_messages import HostMessages
from engine_scripting.ecs._instance_errors import instance_errors
from engine_scripting.ecs._runs import ScriptRun
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import (
    CallAbandoned,
    ScriptArgumentError,
    ScriptError,
    ScriptRuntimeError,
)
from engine_scripting.manager import ManagedScript, ScriptManager

WriteBack = Callable[[ScriptRun, tuple[Any, ...] | None, list[ScriptError]], None]


class CallHost(Protocol):
    """What HostCalls needs of the processor (the ScriptSystem)."""

    manager: ScriptManager
    ticking: bool

    def is_script_entity(self, entity: object) -> bool:
        """Whether scripts may address ``entity`` (it exists and is not a resource)."""


class HostCalls:
    """``system.call`` for one ScriptSystem.

    Args:
        host: the system.
        runs: the system's ScriptRun per script name (read only).
        messages: its HostMessages (flushed after each call).
        write_back: applies a batch's buffered writes (``ScriptSystem._write_back``).
        report: logs errors and puts them on the console (``ScriptSystem._report``).
        abandoned: disables and forgets a script whose call was abandoned.
    """

    def __init__(self, host: CallHost, runs: dict[str, ScriptRun], messages: HostMessages,
                 write_back: WriteBack,
                 report: Callable[[ManagedScript, list[ScriptError]], None],
                 abandoned: Callable[[ManagedScript, CallAbandoned], None]) -> None:
        self._host = host
        self._runs = runs
        self._messages = messages
        self._write_back = write_back
        self._report = report
        self._abandoned = abandoned

    def call(self, script: str, entity: int, function: str, args: tuple[object, ...]) -> Any:
        """Run ``script``'s global ``function(self, *args)`` for its instance on ``entity``,
        between ticks; return the function's results as ``ScriptContext.call`` returns them
        (None for none, one value, or a tuple; plain data). Events it emits are heard by the
        host's listeners when it returns; scripts receive them at the next tick.

        Raises, before anything runs: ScriptError when ``script`` is not loaded or disabled, when
        a tick is running or ``script`` itself is running (a host function it called), when
        ``entity`` does not run ``script`` or has no instance of it yet (instances start at the
        script's next tick); ScriptArgumentError when ``function`` is not a str or ``args`` are
        not plain data; ScriptRuntimeError when the script has no global function ``function``.
        Raises the call's own errors as a tick records them: ScriptRuntimeError,
        ResourceLimitExceeded, PermissionDenied (the script is disabled), CallAbandoned.
        """
        record, run = self._checked(script, entity, function)
        outcome: list[Any] = []
        stuck: list[CallAbandoned] = []

        def abandoned(item: ManagedScript, error: CallAbandoned) -> None:
            self._abandoned(item, error)
            stuck.append(error)

        try:
            self._host.manager.engine.run_each(
                [record], lambda _: outcome.append(self._run(run, entity, function, args)),
                _context_of, abandoned)
        finally:
            self._messages.flush()
        if stuck:
            raise stuck[0]
        return outcome[0]

    def _checked(self, script: str, entity: int,
                 function: str) -> tuple[ManagedScript, ScriptRun]:
        """The script's record and run, or the error saying why there is no such call."""
        host = self._host
        record = host.manager.running(script) if isinstance(script, str) else None
        if record is None:
            raise ScriptError(f"system.call: no script named {script!r}")
        if host.ticking:
            raise ScriptError(f"system.call({script!r}) during a tick: call between ticks",
                              script=script)
        if record.context.running:
            raise ScriptError(f"system.call({script!r}) from inside a call of that script (a "
                              "host function it called): call it after that call", script=script)
        if not record.enabled:
            raise ScriptError(f"system.call: {script!r} is disabled ({record.disabled_reason})",
                              script=script)
        if not isinstance(function, str):
            raise ScriptArgumentError(
                f"system.call: function name must be a str, not {type(function).__name__}",
                script=script)
        link = esper.try_component(entity, Script) if host.is_script_entity(entity) else None
        if link is None or script not in link.names:
            raise ScriptError(f"system.call: entity {entity!r} does not run {script!r}",
                              script=script)
        run = self._runs.get(script)
        if run is None or run.record is not record or entity not in run.instances:
            raise _no_instance(script, entity)
        return record, run

    def _run(self, run: ScriptRun, entity: int, function: str,
             args: tuple[object, ...]) -> Any:
        """On the worker: the call's batch, its writes, its errors recorded and raised."""
        record = run.record
        name, context = record.name, record.context
        run.bindings.batch.start_batch(run.order)
        errors: list[ScriptError] = []
        try:
            result = run.entries.call(entity, function, len(args), list(args))
        except ScriptArgumentError as error:  # the host's arguments: nothing ran
            raise error.with_context(script=name, entity=entity) from None
        except ScriptError as error:
            if not (context.closed or context.dead):
                run.entries.last_entity()   # the stopped call leaves no entity current
            errors.append(error.with_context(script=name, entity=entity, callback=function))
            self._write_back(run, None, errors)
        else:
            if result[0] is not True:   # nothing ran
                if result[1] == b"function":
                    raise ScriptRuntimeError(f"no global function {function!r}", script=name,
                                             entity=entity, callback=function)
                raise _no_instance(name, entity)
            if len(result) > 2:
                self._write_back(run, result[2:], errors)
            if result[1] is not None:
                errors.extend(instance_errors(name, result[1]))
        errors.extend(run.host_errors)
        run.host_errors.clear()
        if not errors:
            try:
                return run.entries.call_results()[0]
            except ScriptError as error:   # results too large, or too slow to convert
                errors.append(error.with_context(script=name, entity=entity, callback=function))
        self._report(record, errors)
        self._host.manager.record_tick(record, errors, len(run.instances))
        raise errors[0]


def _no_instance(script: str, entity: int) -> ScriptError:
    return ScriptError(f"system.call: entity {entity} has no instance of {script!r} yet "
                       "(instances start at the script's next tick)", script=script,
                       entity=entity)


def _context_of(record: ManagedScript) -> ScriptContext:
    return record.context
