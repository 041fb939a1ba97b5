"""Spawn templates: entities the host defines and scripts create by name.

The host registers a template on its ScriptSystem (``system.register_template("bullet",
components=[...], script="bullet")``); a script granted the template
(``Permissions(templates={"bullet"})``) spawns it with ``world.spawn("bullet", {Position =
{x = 1, y = 2}})``. The host vouched for the template, so the spawner needs none of the grants
of the template's components or script, only ``write`` for the fields its overrides set.

Each spawn builds fresh component objects: a component given as an instance is a prototype,
deep-copied for every spawn; a class or another callable that is not a dataclass instance is a
factory, called with no arguments for every spawn.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

from engine_scripting.ecs._components import Script

Maker = Callable[[], object]


class TemplateError(ValueError):
    """A spawn from a template could not be built (the message goes to the script)."""


def _maker(item: object, position: int, name: str) -> Maker:
    if item is None:
        raise TypeError(f"template {name!r}: component #{position} is None")
    if isinstance(item, type) or (callable(item) and not dataclasses.is_dataclass(item)):
        return item  # a factory: a class or another callable
    try:
        copy.deepcopy(item)
    except Exception as error:
        raise ValueError(f"template {name!r}: component #{position} ({type(item).__name__}) "
                         f"cannot be copied for each spawn: {error}") from error
    return partial(copy.deepcopy, item)


@dataclass(frozen=True, slots=True)
class SpawnTemplate:
    """One registered template.

    Attributes:
        name: what scripts pass to ``world.spawn``.
        makers: one function per component, each returning a fresh component object.
        types: the component types a spawn creates, in order.
        script: the script the spawned entity runs, or None.
    """

    name: str
    makers: tuple[Maker, ...]
    types: tuple[type, ...]
    script: str | None

    def build(self, overrides: Mapping[type, Mapping[str, object]]) -> list[object]:
        """Fresh components for one spawn, with ``overrides`` (component type -> field values,
        already checked by the world API) applied; the Script component last when the template
        has a script. Raises TemplateError when an override names a component the template
        lacks or a component cannot be built."""
        for component_type in overrides:
            if component_type not in self.types:
                raise TemplateError(f"template {self.name[:64]!r} has no "
                                    f"{component_type.__name__} component")
        components: list[object] = []
        for maker, component_type in zip(self.makers, self.types, strict=True):
            try:
                component = maker()
                if type(component) is not component_type:
                    raise TypeError(f"its factory made a {type(component).__name__}, not a "
                                    f"{component_type.__name__}")
                values = overrides.get(component_type)
                if values:
                    component = dataclasses.replace(component, **values)  # type: ignore[type-var]
            except Exception as error:
                raise TemplateError(f"could not create {component_type.__name__} from template "
                                    f"{self.name[:64]!r}: {error}") from error
            components.append(component)
        if self.script is not None:
            components.append(Script(self.script))
        return components


class TemplateRegistry:
    """The spawn templates of one ScriptSystem, by name."""

    def __init__(self) -> None:
        self._templates: dict[str, SpawnTemplate] = {}

    def register(self, name: str, components: Iterable[object],
                 script: str | None = None) -> SpawnTemplate:
        """Register template ``name``: ``components`` is a sequence of component instances
        (prototypes, deep-copied at each spawn) or zero-argument factories (classes or other
        callables, called at each spawn); ``script`` the script its entities run, or None.

        Each component is built twice here, to check that it can be and that each spawn gets
        objects of its own. Raises TypeError for arguments of the wrong type and ValueError for
        a name already registered, two components of one type, a ``Script`` among the
        components, or a component that cannot be built.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"template name must be a non-empty string, not {name!r}")
        if name in self._templates:
            raise ValueError(f"template {name!r} is already registered")
        if script is not None and (not isinstance(script, str) or not script):
            raise TypeError(f"script must be a script name or None, not {script!r}")
        if isinstance(components, str | bytes) or not isinstance(components, Iterable):
            raise TypeError(f"template {name!r}: components must be a sequence of component "
                            f"instances or factories, not {components!r}")
        makers = tuple(_maker(item, position, name)
                       for position, item in enumerate(components, start=1))
        try:
            first, second = [maker() for maker in makers], [maker() for maker in makers]
        except Exception as error:
            raise ValueError(f"template {name!r}: a component factory failed: {error}") from error
        types = tuple(type(component) for component in first)
        for position, (one, other) in enumerate(zip(first, second, strict=True), start=1):
            if one is None:
                raise TypeError(f"template {name!r}: component #{position} made None")
            if one is other:
                raise ValueError(f"template {name!r}: component #{position} "
                                 f"({type(one).__name__}) returns the same object for every "
                                 "spawn; each entity needs its own")
            if type(other) is not type(one):
                raise ValueError(f"template {name!r}: component #{position} makes objects of "
                                 "different types")
        if len(set(types)) != len(types):
            raise ValueError(f"template {name!r}: two components of one type (an entity holds "
                             "one component of each type)")
        if Script in types:
            raise ValueError(f"template {name!r}: give its script with script=, not as a "
                             "Script component")
        template = SpawnTemplate(name, makers, types, script)
        self._templates[name] = template
        return template

    def get(self, name: str) -> SpawnTemplate | None:
        """The template registered as ``name``, or None."""
        return self._templates.get(name)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._templates)
