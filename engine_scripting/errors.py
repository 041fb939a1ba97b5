"""Typed errors raised by engine_scripting.

Every failure a script causes reaches the host as a ``ScriptError`` subclass. Each error carries
the context known where it was raised (script name, line, traceback); the rooms above add more
with :meth:`ScriptError.with_context` as the error travels up.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal, Self

LimitType = Literal["memory", "time", "recursion"]
_LIMIT_TYPES: MappingProxyType[str, LimitType] = MappingProxyType(
    {"memory": "memory", "time": "time", "recursion": "recursion"})


def limit_type_of(name: object) -> LimitType:
    """The limit a Lua side named (bytes or str), checked against the closed set of limits;
    ValueError for anything else, so that a new kind cannot pass unnoticed."""
    key = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    if not isinstance(key, str) or key not in _LIMIT_TYPES:
        raise ValueError(f"not a limit: {name!r}")
    return _LIMIT_TYPES[key]
# What an error keeps of a script's message and traceback (a script may raise megabytes)
MAX_MESSAGE_CHARS = 4096
MAX_TRACEBACK_CHARS = 8192


class ScriptError(Exception):
    """Base class of every error a script can cause.

    Attributes:
        script: name of the script or context, when known.
        line: line of the script where the error was raised, when known.
        traceback: the Lua traceback text, when there is one.
        entity: the esper entity the script ran for, when known.
        callback: the script callback that was running (``on_update``...), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        script: str | None = None,
        line: int | None = None,
        traceback: str | None = None,
        entity: int | None = None,
        callback: str | None = None,
    ) -> None:
        message = _capped(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.script = script
        self.line = line
        self.traceback = None if traceback is None else _capped(traceback, MAX_TRACEBACK_CHARS)
        self.entity = entity
        self.callback = callback

    def with_context(
        self,
        *,
        script: str | None = None,
        entity: int | None = None,
        callback: str | None = None,
    ) -> Self:
        """Fill in context fields that are still unknown and return the same error."""
        if self.script is None:
            self.script = script
        if self.entity is None:
            self.entity = entity
        if self.callback is None:
            self.callback = callback
        return self

    def __str__(self) -> str:
        return self.message

    def detached(self) -> Self:
        """This error without the Python tracebacks of it and its causes: a kept error must not
        keep the frames it passed through alive (they hold a call's Lua tables)."""
        error: BaseException | None = self
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            error.__traceback__ = None
            error = error.__cause__ or error.__context__
        return self


def _capped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class ScriptCompileError(ScriptError):
    """The source could not be compiled (syntax error)."""


class ScriptArgumentError(ScriptError):
    """A value handed to a script (a call's arguments, an event's payload) is not plain data
    the sandbox accepts: another type, an integer outside 64 bits, a cycle, too deep."""


class ScriptRuntimeError(ScriptError):
    """The script raised an error while running; the message names the script and line."""


class SaveDataError(ScriptError):
    """What a script gave ``ScriptManager.save_state`` (its ``on_save`` result, or its fields)
    is not JSON data; ``path`` names the offending value (``self.inventory[3].fn``)."""

    def __init__(self, message: str, *, path: str, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.path = path


class SecurityViolation(ScriptError):
    """The script tried to leave its sandbox (binary chunks, finalizers, Python objects...)."""

    def __init__(self, message: str, *, reason: str = "escape", **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.reason = reason


class PermissionDenied(SecurityViolation):
    """The script used a world operation it was not granted."""


class ResourceLimitExceeded(ScriptError):
    """The script went over one of its limits; ``limit_type`` says which."""

    def __init__(self, message: str, *, limit_type: LimitType, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.limit_type: LimitType = limit_type


class CallAbandoned(ResourceLimitExceeded):
    """A call ran far past its time budget inside a C function, where no hook can stop it. The
    host stopped waiting for it: its context is dead and refuses every call from then on (see
    docs/security.md for what the abandoned call can still consume)."""
