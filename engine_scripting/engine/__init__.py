"""The engine room: execution only.

``ScriptEngine`` creates ``ScriptContext`` sandboxes (one Lua state each) and enforces their
``ScriptResourceLimits``. Nothing here knows of esper, the manager or the world API.

For the rooms built on it (not part of the game-facing API): ``compile_chunk`` precompiles a
trusted Lua file for ``ScriptContext.install``, ``to_python`` converts a Lua value a host
function received, ``INT_MIN``/``INT_MAX`` bound Lua's integers, and ``MAX_SOURCE_BYTES`` caps a
script's source.
"""

from engine_scripting.engine._context import ScriptContext
from engine_scripting.engine._convert import INT_MAX, INT_MIN, to_python
from engine_scripting.engine._engine import ScriptEngine, compile_chunk
from engine_scripting.engine._limits import MAX_SOURCE_BYTES, ScriptResourceLimits

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_SOURCE_BYTES",
    "ScriptContext",
    "ScriptEngine",
    "ScriptResourceLimits",
    "compile_chunk",
    "to_python",
]
