"""The esper components engine_scripting defines: the entity-script link and the console."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

ConsoleLevel = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Script:
    """Attaches the script loaded under ``name`` in the ScriptManager to an entity.

    This component is the only link between entities and scripts. Removing it (or the entity)
    ends the instance; ``on_destroy`` runs at the next tick. It is immutable: to switch an
    entity to another script, add a new ``Script`` component (esper then sees the change).
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


# A script holding this many messages beyond its share triggers a compaction of the console.
_COMPACT_SLACK = 16


@dataclass(slots=True)
class Console:
    """The console resource: one per world, on a resource entity created by the ScriptSystem.

    ``messages`` is bounded; the oldest messages drop first. Each script may hold at most
    ``share`` of them (default a quarter): beyond that its own oldest lines go, so a flooding
    script cannot push the other scripts' messages out, however many ticks it floods.
    """

    maxlen: int = 1000
    share: int = 0
    messages: deque[ConsoleMessage] = field(init=False)
    _held: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.maxlen, bool) or not isinstance(self.maxlen, int) or self.maxlen < 1:
            raise ValueError(f"maxlen must be a positive int, not {self.maxlen!r}")
        if self.share == 0:
            self.share = max(1, self.maxlen // 4)
        if isinstance(self.share, bool) or not isinstance(self.share, int) or self.share < 1:
            raise ValueError(f"share must be a positive int, not {self.share!r}")
        self.messages = deque(maxlen=self.maxlen)
        self._held = {}

    def append(self, message: ConsoleMessage) -> None:
        """Add a message, keeping every script within its share."""
        messages, held = self.messages, self._held
        if len(messages) == self.maxlen:
            dropped = messages[0].script
            held[dropped] = held.get(dropped, 1) - 1
        messages.append(message)
        count = held.get(message.script, 0) + 1
        held[message.script] = count
        if count > self.share + _COMPACT_SLACK:
            self._compact()

    def _compact(self) -> None:
        """Keep each script's newest ``share`` messages, in order (one pass, O(maxlen))."""
        kept: dict[str, int] = {}
        newest_first = []
        for message in reversed(self.messages):
            count = kept.get(message.script, 0)
            if count < self.share:
                kept[message.script] = count + 1
                newest_first.append(message)
        self.messages.clear()
        self.messages.extend(reversed(newest_first))
        self._held = kept

    def drain(self) -> list[ConsoleMessage]:
        """Return every message and empty the console."""
        drained = list(self.messages)
        self.clear()
        return drained

    def clear(self) -> None:
        """Drop every message."""
        self.messages.clear()
        self._held.clear()

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
