"""Every hostile script of the catalogue (engine_scripting/bench/hostile), in a real esper world
with real lupa: the host records the error the catalogue expects, the script ends up enabled or
disabled as expected, and the rest of the game runs on. Scripts that would never return without
their limit run in a child process with a hard timeout, so that a regression fails the test
instead of hanging the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import esper
import pytest

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptManager,
    ScriptResourceLimits,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.bench.hostile import BY_NAME, CATALOGUE, HostileScript, Position

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Counter:
    n: int = 0


NEIGHBOUR = """
function on_update(self)
  local c = world.get(self.entity, "Counter")
  world.set(self.entity, "Counter", {n = c.n + 1})
end"""
# wall-clock limits: room for a loaded machine's pauses, so that only the hostile script stops
NEIGHBOUR_LIMITS = ScriptResourceLimits(max_memory_mb=16, max_execution_time_ms=2000)


def trial(entry: HostileScript, engine: ScriptEngine) -> list[str]:
    """Run ``entry`` on ``engine`` beside a well-behaved neighbour and an unscripted victim
    until it settles; return how the outcome differs from the catalogue (empty: as expected)."""
    previous = esper.current_world
    world = f"hostile-{entry.name}-{uuid.uuid4().hex}"
    esper.switch_world(world)
    manager = ScriptManager(engine, initializers=[WorldApi()])
    try:
        esper.add_processor(ScriptSystem(manager, components=[Position, Counter],
                                         hot_reload_interval_s=None))
        victim = esper.create_entity(Position(7.0, 7.0))
        manager.load("neighbour", NEIGHBOUR, limits=NEIGHBOUR_LIMITS,
                     permissions=Permissions(read={"Counter"}, write={"Counter"}))
        neighbour = esper.create_entity(Counter(), Script("neighbour"))
        manager.load(entry.name, entry.source, permissions=entry.grants)
        esper.create_entity(Position(), Script(entry.name))
        ticks = 0
        while ticks < entry.settle_ticks(engine.limits):
            esper.process(1 / 60)
            ticks += 1
            if entry.expect.disabled and not manager.status(entry.name).enabled:
                break
        problems = list(entry.problems(manager.status(entry.name)))
        ran = esper.component_for_entity(neighbour, Counter).n
        status = manager.status("neighbour")
        if ran != ticks or status.error_count or not status.enabled:
            problems.append(f"the neighbour ran {ran} of {ticks} ticks, errors "
                            f"{status.error_count}, enabled {status.enabled}")
        if victim != 1 or esper.component_for_entity(victim, Position) != Position(7.0, 7.0):
            problems.append(f"entity 1 changed: {esper.components_for_entity(victim)}")
        return problems
    finally:
        for name in manager.names():
            manager.unload(name)
        esper.switch_world(previous)
        esper.delete_world(world)


CHILD = """
import json, logging, sys
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
from engine_scripting import ScriptEngine
from engine_scripting.bench.hostile import BY_NAME
from tests.conftest import FAST_LIMITS
from tests.hardening.test_hostile import trial
engine = ScriptEngine(FAST_LIMITS)
print("PROBLEMS", json.dumps(trial(BY_NAME[sys.argv[1]], engine)), flush=True)
engine.close()
"""


def _trial_in_a_child(entry: HostileScript) -> list[str]:
    done = subprocess.run([sys.executable, "-c", CHILD, entry.name], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    [line] = [line for line in done.stdout.splitlines() if line.startswith("PROBLEMS ")]
    problems: list[str] = json.loads(line.removeprefix("PROBLEMS "))
    return problems


@pytest.mark.parametrize("entry", CATALOGUE, ids=[entry.name for entry in CATALOGUE])
def test_the_host_observes_what_the_catalogue_expects(engine: ScriptEngine,
                                                      entry: HostileScript) -> None:
    if entry.hangs_unless_stopped:
        assert _trial_in_a_child(entry) == []
    else:
        assert trial(entry, engine) == []


def test_every_hostile_file_is_in_the_catalogue_once() -> None:
    folder = CATALOGUE[0].path.parent
    assert sorted(path.stem for path in folder.glob("*.lua")) == sorted(BY_NAME)
    assert len(BY_NAME) == len(CATALOGUE)
