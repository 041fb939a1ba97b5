"""The esper components engine_scripting defines: the entity-script link and the console."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

ConsoleLevel = Literal["info", "warning", "error"]


@dataclass(slots=True)
class Script:
    """Attaches the script loaded under ``name`` in the ScriptManager to an entity.

    This component is the only link between entities and scripts. Removing it (or the entity)
    ends the instance; ``on_destroy`` runs at the next tick.
    """

    name: str


@dataclass(frozen=True, slots=True)
class ConsoleMessage:
    """One console line: what a script printed, or an error the system recorded."""

    script: str
    entity: int | None
    text: str
    level: ConsoleLevel
    tick: int


@dataclass(slots=True)
class Console:
    """The console resource: one per world, on a resource entity created by the ScriptSystem.

    ``messages`` is bounded; the oldest messages drop first.
    """

    maxlen: int = 1000
    messages: deque[ConsoleMessage] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.maxlen, bool) or not isinstance(self.maxlen, int) or self.maxlen < 1:
            raise ValueError(f"maxlen must be a positive int, not {self.maxlen!r}")
        self.messages = deque(maxlen=self.maxlen)

    def drain(self) -> list[ConsoleMessage]:
        """Return every message and empty the console."""
        drained = list(self.messages)
        self.messages.clear()
        return drained

    def clear(self) -> None:
        """Drop every message."""
        self.messages.clear()

    def tail(self, count: int) -> list[ConsoleMessage]:
        """The last ``count`` messages, oldest first."""
        if count <= 0:
            return []
        return list(self.messages)[-count:]


@dataclass(frozen=True, slots=True)
class ScriptEvent:
    """An event a script emitted: delivered at the start of the next tick.

    ``target`` None means every running instance. ``payload`` is a plain-data copy.
    """

    name: str
    payload: object
    source_entity: int | None
    source_script: str
    target: int | None


@dataclass(slots=True)
class EventQueue:
    """The bounded queue of events waiting for delivery: on the same resource entity as Console."""

    maxlen: int = 1024
    pending: deque[ScriptEvent] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.maxlen, bool) or not isinstance(self.maxlen, int) or self.maxlen < 1:
            raise ValueError(f"maxlen must be a positive int, not {self.maxlen!r}")
        self.pending = deque()

    def offer(self, event: ScriptEvent) -> bool:
        """Queue ``event``; False when the queue is full (the event is refused, not dropped)."""
        if len(self.pending) >= self.maxlen:
            return False
        self.pending.append(event)
        return True

    def take(self) -> list[ScriptEvent]:
        """Every queued event, oldest first; the queue is left empty."""
        events = list(self.pending)
        self.pending.clear()
        return events
