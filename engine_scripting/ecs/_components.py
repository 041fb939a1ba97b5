"""The esper components engine_scripting defines: the entity-script link and the console."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from engine_scripting.ecs._params import frozen_params, thawed

ConsoleLevel = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True, init=False)
class Script:
    """Attaches the scripts loaded under ``names`` in the ScriptManager to an entity:
    ``Script("mover")``, or ``Script("mover", "shooter")`` for several, each with its own
    instance (its own ``self``) on the entity. Scripts run in load order, whatever the order here.

    This component is the only link between entities and scripts (esper holds one component of
    a type per entity, hence one component for several scripts). Removing it (or the entity)
    ends the instances; ``on_destroy`` runs at the next tick. It is immutable: to switch an
    entity to other scripts, add a new ``Script`` component (esper then sees the change); the
    scripts in both keep their instances.

    ``params`` (keyword only) is plain data every instance this component starts reads as the
    read-only ``self.params`` (each named script's instance sees the same). It is checked and
    deep-frozen here: ``.params`` is a read-only mapping (lists become tuples), empty when none
    was given. An instance reads its params once, when it starts: a new component with other
    params changes nothing for the instances already running (see _params.py).

    Raises TypeError for a name that is not a str, ValueError for no name, an empty name or a
    name given twice; TypeError or ValueError for params that are not plain data, keyed by str,
    within the caps (``frozen_params``).
    """

    names: tuple[str, ...]
    params: Mapping[str, object]

    def __init__(self, *names: str, params: Mapping[str, object] | None = None) -> None:
        if not names:
            raise ValueError("Script needs at least one script name")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"a script name must be a str, not {type(name).__name__}")
            if not name:
                raise ValueError("a script name must not be empty")
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"Script names a script twice: {', '.join(map(repr, twice))}")
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "params", frozen_params(params))

    def __hash__(self) -> int:
        # params are read-only mappings (unhashable); equal components have equal names
        return hash(self.names)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # read-only mappings cannot be pickled or deep-copied: rebuild from plain values
        return partial(Script, params=thawed(self.params)), self.names

    @property
    def name(self) -> str:
        """The script's name, when the component names exactly one; with several it raises
        ValueError (code that reads one name would silently miss the others: use ``names``)."""
        if len(self.names) != 1:
            raise ValueError(f"this Script names {len(self.names)} scripts: read .names")
        return self.names[0]


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
    """An event a script emitted, or the host sent: delivered at the start of the next tick.

    ``target`` None means every running instance. ``payload`` is a plain-data copy.
    ``source_entity`` is the emitting instance's entity (the receivers' ``sender``) and
    ``source_script`` its script; both are None for an event the host sent (``system.send``).
    """

    name: str
    payload: object
    source_entity: int | None
    source_script: str | None
    target: int | None
    # events.payload_sizes of the payload when already known (the world API measures it)
    sizes: tuple[int, int] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class EventQueue:
    """The bounded queue of events waiting for delivery: on the same resource entity as Console.

    Scripts share it: one script's events may take ``per_script`` places at most (a quarter of
    ``maxlen`` unless set), and as many payload bytes as the script's own memory limit, so a
    flooding script cannot starve its neighbours. ``host_share`` places (an eighth of
    ``maxlen`` unless set) are the host's: scripts' events together take at most ``maxlen -
    host_share`` places, so flooding scripts cannot starve the host's events either. The host's
    events (offered without ``max_bytes``) may take any free place.
    """

    maxlen: int = 1024
    per_script: int = 0
    host_share: int = 0
    pending: deque[ScriptEvent] = field(init=False)
    _held: dict[str | None, tuple[int, int]] = field(init=False)
    _from_scripts: int = field(init=False)

    def __post_init__(self) -> None:
        for name in ("maxlen", "per_script", "host_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        if self.maxlen < 1:
            raise ValueError(f"maxlen must be a positive int, not {self.maxlen!r}")
        if self.per_script == 0:
            self.per_script = max(1, self.maxlen // 4)
        if self.host_share == 0:
            self.host_share = min(max(1, self.maxlen // 8), self.maxlen - 1)
        if self.host_share >= self.maxlen and self.maxlen > 1:
            raise ValueError(f"host_share must leave scripts a place: {self.host_share} >= "
                             f"maxlen {self.maxlen}")
        self.pending = deque()
        self._held = {}
        self._from_scripts = 0

    def offer(self, event: ScriptEvent, *, size: int = 0, max_bytes: int | None = None) -> bool:
        """Queue ``event``; False when the queue is full (the event is refused, not dropped).

        ``max_bytes`` given: the event comes from a script, ``event.source_script``, and counts
        against that script's share, with ``size`` bytes of its ``max_bytes`` per tick, and
        against the places scripts may take together. Without it, the event is the host's."""
        if len(self.pending) >= self.maxlen:
            return False
        if max_bytes is not None:
            count, held_bytes = self._held.get(event.source_script, (0, 0))
            if (count >= self.per_script or held_bytes + size > max_bytes
                    or self._from_scripts >= self.maxlen - self.host_share):
                return False
            self._held[event.source_script] = (count + 1, held_bytes + size)
            self._from_scripts += 1
        self.pending.append(event)
        return True

    def take(self) -> list[ScriptEvent]:
        """Every queued event, oldest first; the queue is left empty."""
        events = list(self.pending)
        self.pending.clear()
        self._held.clear()
        self._from_scripts = 0
        return events
