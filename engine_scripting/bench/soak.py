"""Soak test: many well-behaved scripts for many ticks while hostile scripts come and go.

Used by ``scripts/soak.py`` (the full run) and by the test suite (a reduced run). The hostile
scripts are the catalogue's (engine_scripting/bench/hostile). It reports the process's resident
memory over time, checks that unloaded scripts' Lua states are freed, and returns the
well-behaved scripts' final world state, so that a run with hostile neighbours can be compared
with one without them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import uuid
import weakref
from collections.abc import Callable
from dataclasses import astuple, dataclass, field

import esper

from engine_scripting.bench.hostile import CATALOGUE, HostileScript, Position
from engine_scripting.ecs import Script, ScriptSystem, WorldApi
from engine_scripting.engine import ScriptEngine, ScriptResourceLimits
from engine_scripting.manager import ScriptManager
from engine_scripting.permissions import Permissions

SOAK_LIMITS = ScriptResourceLimits(max_memory_mb=8, max_execution_time_ms=20,
                                   max_recursion_depth=200)
# Time limits are wall-clock: the well-behaved scripts get room for a loaded machine's pauses,
# so that only the hostile ones ever hit a limit.
GOOD_LIMITS = ScriptResourceLimits(max_memory_mb=8, max_execution_time_ms=2000,
                                   max_recursion_depth=200)


@dataclass(slots=True)
class Body:
    x: float = 0.0
    y: float = 0.0
    vx: float = 0.0
    vy: float = 0.0


@dataclass(slots=True)
class Counter:
    ticks: int = 0
    pings: int = 0
    label: str = ""


GOOD_SOURCE = """
local step = {step}
function on_start(self) self.seen = 0 end
function on_update(self, dt)
  local b = world.get(self.entity, "Body")
  local vx, vy = b.vx, b.vy
  local x, y = b.x + vx * dt * step, b.y + vy * dt
  if x < 0 or x > 100 then vx = -vx end
  if y < 0 or y > 100 then vy = -vy end
  world.set(self.entity, "Body", {{x = x, y = y, vx = vx, vy = vy}})
  local c = world.get(self.entity, "Counter")
  world.set(self.entity, "Counter", {{ticks = c.ticks + 1, label = "good" .. (c.ticks % 7)}})
  -- the two entities of a script were created one after the other: ping the other one
  local sibling = self.entity % 2 == 1 and self.entity + 1 or self.entity - 1
  if c.ticks % 25 == 0 then world.emit("ping", {{from = self.entity, n = c.ticks}}, sibling) end
end
function on_event(self, name, payload)
  if name == "ping" and type(payload.n) == "number" then
    local c = world.get(self.entity, "Counter")
    world.set(self.entity, "Counter", {{pings = c.pings + 1}})
  end
end
"""
# targeted events to a sibling need scope "any"
GOOD_GRANTS = Permissions(read={"Body", "Counter"}, write={"Body", "Counter"}, emit={"ping"},
                          scope="any")

# The whole catalogue but the heavy flooder: 10 ms of printing every tick of a 100,000-tick run,
# and nothing the flooder does not show already
HOSTILE: tuple[HostileScript, ...] = tuple(
    entry for entry in CATALOGUE if entry.name != "flooder_heavy")


@dataclass(slots=True)
class SoakResult:
    """What a soak run measured."""

    ticks: int
    # (tick, resident KiB once free heap pages went back to the system, see release_free_memory)
    rss_kib: list[tuple[int, int]] = field(default_factory=list)
    good_state: list[tuple[object, ...]] = field(default_factory=list)
    hostile_rounds: int = 0
    states_freed: int = 0
    states_unloaded: int = 0
    good_errors: int = 0

    @property
    def rss_growth_kib(self) -> int:
        """Resident memory at the end minus after the first report (the warm-up)."""
        if len(self.rss_kib) < 2:
            return 0
        return self.rss_kib[-1][1] - self.rss_kib[0][1]


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``); False where
    there is no such call.

    glibc keeps the pages of freed blocks: after a round of hostile scripts filled their Lua
    states to the limit and were unloaded, resident memory stays at that high-water mark
    (tens of MiB, depending on how the blocks happened to lie) although nothing holds it.
    Trimming first makes resident memory show what is in use, which is what a leak grows.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError, TypeError):
        return False


def resident_kib() -> int:
    """This process's resident memory now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_soak(ticks: int, good_scripts: int, hostile: bool, hostile_every: int = 500,
             report_every: int = 1000,
             progress: Callable[[int, int], None] | None = None) -> SoakResult:
    """Run ``ticks`` ticks with ``good_scripts`` well-behaved scripts (two entities each) and,
    when ``hostile``, a fresh set of hostile scripts every ``hostile_every`` ticks (the previous
    set is unloaded first)."""
    engine = ScriptEngine(SOAK_LIMITS)
    previous = esper.current_world
    world = f"soak-{uuid.uuid4().hex}"
    esper.switch_world(world)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    esper.add_processor(ScriptSystem(manager, components=[Body, Counter, Position],
                                     hot_reload_interval_s=None))
    result = SoakResult(ticks)
    good_entities: list[int] = []
    for index in range(good_scripts):
        name = f"good{index}"
        manager.load(name, GOOD_SOURCE.format(step=1 + index % 3), permissions=GOOD_GRANTS,
                     limits=GOOD_LIMITS)
        for copy in range(2):
            good_entities.append(esper.create_entity(
                Body(float(index % 100), float(copy * 40), 3.0 + index % 5, 2.0 + copy),
                Counter(label="start"), Script(name)))
    hostile_entities: list[int] = []
    unloaded: list[weakref.ref[object]] = []
    try:
        for tick in range(1, ticks + 1):
            if hostile and (tick - 1) % hostile_every == 0:
                _replace_hostiles(manager, hostile_entities, unloaded, result.hostile_rounds)
                result.hostile_rounds += 1
            esper.process(1 / 60)
            if tick % report_every == 0 or tick == ticks:
                gc.collect()
                release_free_memory()
                result.rss_kib.append((tick, resident_kib()))
                if progress is not None:
                    progress(tick, result.rss_kib[-1][1])
        _replace_hostiles(manager, hostile_entities, unloaded, -1)
        gc.collect()
        result.states_unloaded = len(unloaded)
        result.states_freed = sum(1 for ref in unloaded if ref() is None)
        result.good_state = [_state_of(entity) for entity in good_entities]
        result.good_errors = sum(manager.status(f"good{i}").error_count
                                 for i in range(good_scripts))
        return result
    finally:
        for name in manager.names():
            manager.unload(name)
        esper.switch_world(previous)
        esper.delete_world(world)
        engine.close()


def _state_of(entity: int) -> tuple[object, ...]:
    components: tuple[object, ...] = esper.components_for_entity(entity)
    return tuple(astuple(component) for component in components)  # type: ignore[call-overload]


def _replace_hostiles(manager: ScriptManager, entities: list[int],
                      unloaded: list[weakref.ref[object]], round_number: int) -> None:
    for entity in entities:
        if esper.entity_exists(entity):
            esper.delete_entity(entity, immediate=True)
    entities.clear()
    for name in [name for name in manager.names() if name.startswith("hostile-")]:
        record = manager.running(name)
        if record is not None:
            unloaded.append(weakref.ref(record.context))
        manager.unload(name)
    if round_number < 0:
        return
    for entry in HOSTILE:
        name = f"hostile-{entry.name}-{round_number}"
        manager.load(name, entry.source, permissions=entry.grants)
        entities.append(esper.create_entity(Body(), Counter(), Position(), Script(name)))
