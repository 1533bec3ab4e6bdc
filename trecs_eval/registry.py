"""A generic name -> factory registry with "did you mean" errors and entry-point plug-ins.

Built-in entries register by decorator or lazily as ``"module:attr"`` strings (so importing
the registry does not import torch); third-party packages add entries through an entry-point
group such as ``trecs_eval.generators`` without touching this repository.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from trecs_eval.errors import UnknownNameError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of type ``T`` (usually classes or factories)."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | None:
        """``registry.register("x", obj)``, ``registry.register("x", "pkg.mod:Cls")``, or a decorator."""
        if obj is not None:
            self._add(name, obj)
            return None

        def decorator(target: T) -> T:
            self._add(name, target)
            return target

        return decorator

    def _add(self, name: str, obj: T | str) -> None:
        existing = self._items.get(name)
        if existing is not None and existing is not obj and existing != obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._items.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name raises with a suggestion."""
        self._load_entry_points()
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} {name!r}{suggest(name, self._items)}")
        obj = self._items[name]
        if isinstance(obj, str):
            obj = _import_object(obj)
            self._items[name] = obj
        return obj  # type: ignore[return-value]


def _import_object(spec: str) -> object:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module
