"""The engine room: execution only.

``ScriptEngine`` creates ``ScriptContext`` sandboxes (one Lua state each) and enforces their
``ScriptResourceLimits``. Nothing here knows of esper, the manager or the world API.
"""

from engine_scripting.engine._context import ScriptContext
from engine_scripting.engine._engine import ScriptEngine
from engine_scripting.engine._limits import ScriptResourceLimits

__all__ = ["ScriptContext", "ScriptEngine", "ScriptResourceLimits"]
