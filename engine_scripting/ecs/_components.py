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
    # events.payload_sizes of the payload when already known (the world API measures it)
    sizes: tuple[int, int] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class EventQueue:
    """The bounded queue of events waiting for delivery: on the same resource entity as Console.

    Scripts share it: one script's events may take ``per_script`` places at most (a quarter of
    ``maxlen`` unless set), and as many payload bytes as the script's own memory limit, so a
    flooding script cannot starve its neighbours. Host code's events have no share.
    """

    maxlen: int = 1024
    per_script: int = 0
    pending: deque[ScriptEvent] = field(init=False)
    _held: dict[str, tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("maxlen", "per_script"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        if self.maxlen < 1:
            raise ValueError(f"maxlen must be a positive int, not {self.maxlen!r}")
        if self.per_script == 0:
            self.per_script = max(1, self.maxlen // 4)
        self.pending = deque()
        self._held = {}

    def offer(self, event: ScriptEvent, *, size: int = 0, max_bytes: int | None = None) -> bool:
        """Queue ``event``; False when the queue is full (the event is refused, not dropped).

        ``max_bytes`` given: the event comes from a script, ``event.source_script``, and counts
        against that script's share, with ``size`` bytes of its ``max_bytes`` per tick."""
        if len(self.pending) >= self.maxlen:
            return False
        if max_bytes is not None:
            count, held_bytes = self._held.get(event.source_script, (0, 0))
            if count >= self.per_script or held_bytes + size > max_bytes:
                return False
            self._held[event.source_script] = (count + 1, held_bytes + size)
        self.pending.append(event)
        return True

    def take(self) -> list[ScriptEvent]:
        """Every queued event, oldest first; the queue is left empty."""
        events = list(self.pending)
        self.pending.clear()
        self._held.clear()
        return events
