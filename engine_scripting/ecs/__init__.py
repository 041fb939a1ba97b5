"""The ECS room: scripts in an esper world.

``ScriptSystem`` (an esper Processor) runs script instances per entity through the ``world``
API; the components link entities to scripts and hold the console and the event queue.
"""

from engine_scripting.ecs._components import (
    Console,
    ConsoleMessage,
    EventQueue,
    Script,
    ScriptEvent,
)
from engine_scripting.ecs._system import ScriptSystem
from engine_scripting.ecs._world_initializer import WorldApi

__all__ = [
    "Console", "ConsoleMessage", "EventQueue", "Script", "ScriptEvent", "ScriptSystem", "WorldApi",
]
