"""SandboxControl: the typed contract between sandbox.lua and the Python side of a context.

sandbox.lua's set-up chunk returns one control table per Lua state; ``SandboxControl.read``
takes it apart once, so the rest of the engine names each entry point and address instead of
indexing a Lua table by byte strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SandboxControl:
    """What sandbox.lua hands the host for one Lua state.

    Entry points (raw Lua functions; only ``ScriptContext`` calls them, under its checks):
        execute, call, stage: run script code (compile and run, call a global, re-run in a
            fresh environment).
        install: run a trusted precompiled chunk with the sandbox's kit.
        invoke, apply: call a trusted function (arguments on the stack, or packed in a table).
        after_stop: why the watchdog stopped the last call (the limit's name, or nil).
        outcome: what the sandbox recorded about a failed call (deep, handled, limit).
        collect: a garbage-collector step, or a full collection.
        identity: returns its arguments (makes Lua values of plain data inside a watched call).
        set_constant: set a read-only global in this and every later environment.
        set_modules: hand `require` the host function that gives a module's source.

    Addresses (for native.py and the watchdog; read once, as integers):
        main_state: the main ``lua_State``.
        slots_table: the table listing every thread that may run (the watchdog arms them).
        slot_capacity: how many threads that table holds before it grows.
        event_names: the interned strings ``__index``, ``__newindex``, ``__gc``, ``__mode``.
        gc_disabled: the sentinel whose presence turns finalizers off.
    """

    execute: Any
    call: Any
    stage: Any
    install: Any
    invoke: Any
    apply: Any
    after_stop: Any
    outcome: Any
    collect: Any
    identity: Any
    set_constant: Any
    set_modules: Any
    main_state: int
    slots_table: int
    slot_capacity: int
    event_names: tuple[int, ...]
    gc_disabled: int

    @classmethod
    def read(cls, table: Any) -> SandboxControl:
        """Take sandbox.lua's control table apart (once per context)."""
        return cls(
            execute=table[b"execute"], call=table[b"call"], stage=table[b"stage"],
            install=table[b"install"], invoke=table[b"invoke"], apply=table[b"apply"],
            after_stop=table[b"after_stop"], outcome=table[b"outcome"],
            collect=table[b"collect"], identity=table[b"identity"],
            set_constant=table[b"set_constant"], set_modules=table[b"set_modules"],
            main_state=int(table[b"main"], 16), slots_table=int(table[b"slots"], 16),
            slot_capacity=int(table[b"slot_capacity"]),
            event_names=tuple(int(address, 16) for address in table[b"event_names"].split()),
            gc_disabled=int(table[b"gc_disabled"], 16),
        )
