"""Registries of participants: how a lower capability lets higher ones take part in what it does.

A lower capability defines a participant base class (what can be taken part in, each part a no-op by
default) and one `Registry` of them. The composition roots (`tuangou.composition`) install the
participants explicitly, in a stated order; importing a module installs nothing. Using a registry
that was never installed is an error, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


P = TypeVar("P", bound=Named)


class NotComposed(RuntimeError):
    """A capability was used before a composition root installed its participants."""


class Registry(Generic[P]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._items: tuple[P, ...] | None = None
        self.version = 0  # moves on each install: what was built from the participants is rebuilt

    def install(self, participants: Sequence[P]) -> None:
        names = [p.name for p in participants]
        if len(set(names)) != len(names):
            raise ValueError(f"participant names must be unique: {names}")
        self._items = tuple(participants)
        self.version += 1

    @property
    def items(self) -> tuple[P, ...]:
        if self._items is None:
            raise NotComposed(f"no {self.what} participants installed: call tuangou.composition.compose() "
                              "(create_app, the worker and the CLI do) first")
        return self._items

    def names(self) -> list[str]:
        return [p.name for p in self._items or ()]
