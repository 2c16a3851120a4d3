"""A generic name -> class registry for plugins, and the project's base error.

Both plugin kinds (corruptions here, GANs in `gans`) use `Registry`; it lives in
the lowest package so that `corruptions` and `gans` need nothing from the harness.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class BenchmarkError(Exception):
    """Base class of every error this project raises for a user's mistake or missing input."""


class PluginError(BenchmarkError, ValueError):
    """A plugin name, registration or parameter is invalid."""


class DataError(BenchmarkError):
    """A dataset is missing, truncated or corrupt."""


@dataclass(frozen=True)
class Parameter:
    """One keyword parameter of a plugin, as listed by `python -m benchmark plugins`."""

    name: str
    default: Any
    annotation: str


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """Maps snake_case names to subclasses of one base class.

    Entries come from the `register` decorator (built-ins, `--plugin` files) and,
    loaded lazily on first look-up, from the entry points of installed packages.

    Args:
        kind: what the registry holds, used in messages ("corruption", "gan").
        base: the class every registered entry must subclass.
        entry_point_group: the entry-point group installed packages register in.
    """

    def __init__(self, kind: str, base: type[T], entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group
        self._entries: dict[str, type[T]] = {}
        self._entry_points_loaded = entry_point_group is None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            if entry_point.name in self._entries:
                continue  # the package's module registered itself on import already
            try:
                cls = entry_point.load()
            except Exception as err:
                raise PluginError(
                    f"{self.kind} entry point {entry_point.name!r} = {entry_point.value!r} "
                    f"(group {self.entry_point_group}) failed to load: {err}"
                ) from err
            if self._entries.get(entry_point.name) is not cls:
                self.add(entry_point.name, cls)

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator that registers the class under `name`.

        Raises:
            PluginError: if `name` is not snake_case, is taken already, or the
                class does not subclass the registry's base.
        """

        def decorate(cls: type[T]) -> type[T]:
            self.add(name, cls)
            return cls

        return decorate

    def add(self, name: str, cls: type[T]) -> None:
        """Register `cls` under `name`; see `register` for the checks."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{self.kind} name {name!r} is invalid; use snake_case letters, digits "
                "and underscores, starting with a letter"
            )
        if name in self._entries:
            raise PluginError(
                f"{self.kind} name {name!r} is registered already "
                f"(by {self._entries[name].__module__}.{self._entries[name].__qualname__})"
            )
        if not (inspect.isclass(cls) and issubclass(cls, self.base)):
            raise PluginError(
                f"{self.kind} {name!r} must be a subclass of {self.base.__name__}, got {cls!r}"
            )
        cls.name = name  # type: ignore[attr-defined]
        self._entries[name] = cls

    def get(self, name: str) -> type[T]:
        """Return the class registered as `name`.

        Raises:
            PluginError: if nothing is registered under `name`; the message lists
                the registered names and suggests the closest.
        """
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            raise PluginError(
                f"unknown {self.kind} {name!r}{did_you_mean(str(name), known)}; "
                f"registered: {', '.join(known)}"
            ) from None

    def create(self, name: str, params: Mapping[str, Any]) -> T:
        """Instantiate the plugin `name` with keyword `params`.

        Raises:
            PluginError: if `name` is unknown or a parameter is not one the plugin takes.
        """
        cls = self.get(name)
        accepted = [p.name for p in self.parameters(name)]
        for key in params:
            if key not in accepted:
                raise PluginError(
                    f"{self.kind} {name!r} has no parameter {key!r}{did_you_mean(key, accepted)}; "
                    f"accepted: {', '.join(accepted) or 'none'}"
                )
        return cls(**params)

    def parameters(self, name: str) -> list[Parameter]:
        """The keyword parameters of plugin `name`, with defaults, from its `__init__`."""
        signature = inspect.signature(self.get(name).__init__)
        return [
            Parameter(p.name, p.default, str(p.annotation))
            for p in signature.parameters.values()
            if p.name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
