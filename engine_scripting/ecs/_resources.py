"""The world's resources for scripts: the resource entity that holds the Console and the
EventQueue, found or created in the current esper world, and what the ScriptSystem writes on
the Console besides scripts' own lines (hot reloads that failed).

One ``WorldResources`` per ScriptSystem. esper may switch worlds between ticks, so the entity is
looked up again at every tick (``find``) and created in a world that has none.
"""

from __future__ import annotations

import esper

from engine_scripting.ecs._components import Console, ConsoleLevel, ConsoleMessage, EventQueue
from engine_scripting.ecs._world_api import WORLD_CAPS
from engine_scripting.errors import ScriptError
from engine_scripting.manager import ScriptManager

_CONSOLE_LINE = WORLD_CAPS["max_print"]


class WorldResources:
    """The resource entity of the current world and its Console and EventQueue.

    Args:
        console_maxlen: how many messages a Console this creates keeps.
        queue_maxlen: how many events an EventQueue this creates holds.
    """

    def __init__(self, console_maxlen: int, queue_maxlen: int) -> None:
        self.console_maxlen = console_maxlen
        self.queue_maxlen = queue_maxlen
        self.entity: int | None = None
        self._console: Console | None = None
        self._queue: EventQueue | None = None

    def find(self) -> None:
        """Find (or create) the resource entity of the current world, with both resources."""
        entity = self.entity
        if entity is None or not esper.entity_exists(entity):
            existing = esper.get_component(Console)
            if existing:
                entity = existing[0][0]
            else:
                entity = esper.create_entity(Console(self.console_maxlen))
            self.entity = entity
        self._console = esper.component_for_entity(entity, Console)
        queue = esper.try_component(entity, EventQueue)
        if queue is None:
            queue = EventQueue(self.queue_maxlen)
            esper.add_component(entity, queue)
        self._queue = queue

    @property
    def console(self) -> Console:
        """The Console last found (found now when none was)."""
        if self._console is None:
            self.find()
        assert self._console is not None
        return self._console

    @property
    def queue(self) -> EventQueue:
        """The EventQueue last found (found now when none was)."""
        if self._queue is None:
            self.find()
        assert self._queue is not None
        return self._queue

    def write(self, script: str, entity: int | None, text: str, level: ConsoleLevel,
              tick: int) -> None:
        """Append one message to the console."""
        self.console.append(ConsoleMessage(script, entity, text, level, tick))


def reload_changed(manager: ScriptManager, resources: WorldResources, tick: int) -> None:
    """Hot reload: reload the scripts whose files changed (``manager.reload_changed``), and put
    one error line on the console for each reload that failed (its error's first line: the
    file's line for a compile error). The old version of such a script keeps running."""
    changed = manager.changed_files()
    if not changed:
        return
    failures = {name: record.error_count for name in changed
                if (record := manager.running(name)) is not None}
    reloaded = manager.reload_changed()
    for name, count in failures.items():
        record = manager.running(name)
        if name in reloaded or record is None or record.error_count == count:
            continue
        error = record.last_error
        if isinstance(error, ScriptError):
            outcome = ("the old version runs on" if record.enabled
                       else "the script is disabled")
            line = (f"{type(error).__name__}: hot reload failed, {outcome}: "
                    f"{str(error).partition(chr(10))[0]}")
            if len(line) > _CONSOLE_LINE:   # cut as world.lua cuts printed lines
                line = line[:_CONSOLE_LINE] + "..."
            resources.write(name, None, line, "error", tick)
