"""Manager fixtures: the ECS ones (a manager with the world API, and a system), for the tests of
the lifecycle as a game sees it."""

from tests.ecs.conftest import manager, spawn_scripted, system

__all__ = ["manager", "spawn_scripted", "system"]
