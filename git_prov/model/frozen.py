"""Frozen dataclasses whose methods are written in their module, not generated at import.

``@dataclass(frozen=True)`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for each class and compiles it in every
process: for the classes every ``record`` and ``log`` loads, that was a fifth of a
record's start-up (issue 18). Such a class is declared :func:`frozen_fields` (at run time
``@dataclass(init=False, repr=False, eq=False)``) on :class:`Fields`. Its ``__init__`` is
written out in the class (each field set with ``object.__setattr__``, as the generated one
does; a default factory's value made when the argument is :data:`FRESH`); the other five
come from :class:`Fields`, which reads the dataclass's own field list. It stays a
dataclass (``fields``, ``replace``, ``asdict``) and stays frozen: assigning or deleting a
field raises ``FrozenInstanceError`` when it runs, and a type checker refuses it
(:func:`frozen_fields` is a ``dataclass_transform`` with ``frozen_default``).
tests/test_model_frozen.py holds each such class equal to what ``@dataclass(frozen=True)``
makes of the same fields.

A plain (mutable) dataclass on a command's start-up path is declared the same way with
:func:`mutable_fields` on :class:`MutableFields` (``__repr__`` and ``__eq__``; unhashable);
the same test holds each equal to what ``@dataclass`` makes.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, fields
from threading import RLock
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen_fields(cls: type[_T]) -> type[_T]:
    """``@dataclass(init=False, repr=False, eq=False)`` when its fields are first asked for
    (:class:`_FieldsOnFirstUse`); to a type checker, a frozen dataclass (assigning a field
    is refused when checking, as when it runs)."""
    return _on_first_use(cls)


@dataclass_transform(field_specifiers=(field,))
def mutable_fields(cls: type[_T]) -> type[_T]:
    """``@dataclass(init=False, repr=False, eq=False)`` (when its fields are first asked
    for): a plain (mutable) dataclass whose ``__init__`` is written in the class and whose
    ``__repr__`` and ``__eq__`` come from :class:`MutableFields` (unhashable, as
    ``@dataclass``'s ``eq`` makes it)."""
    return _on_first_use(cls)


def _on_first_use(cls: type[_T]) -> type[_T]:
    cls.__dataclass_fields__ = _FieldsOnFirstUse(cls)  # type: ignore[attr-defined]
    return cls


# One class made a dataclass at a time (a base's fields are read while a subclass is made).
_MAKING = RLock()


class _FieldsOnFirstUse:
    """A class's ``__dataclass_fields__`` until something reads it: then the class is made
    a dataclass (``@dataclass(init=False, repr=False, eq=False)``, which puts the real
    field list in its place) and that list is the answer. ``fields``, ``replace``,
    ``asdict`` and ``is_dataclass`` all read it first, so each sees the dataclass as if it
    had been made at import; only a class nothing asks about is never made one. Making a
    dataclass reads its annotations and field specifiers (~0.5M instructions a class): two
    dozen of them were 2% of a ``record``'s start-up (issue 18). Until then a field with a
    default factory is a ``Field`` on the class, not on its instances: each ``__init__``,
    written out, sets every field."""

    __slots__ = ("owner",)

    def __init__(self, owner: type) -> None:
        self.owner = owner

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        owner = self.owner
        with _MAKING:
            if vars(owner).get("__dataclass_fields__") is self:
                dataclass(init=False, repr=False, eq=False)(owner)
        return vars(owner)["__dataclass_fields__"]


class _Fresh:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"  # (what inspect shows for a dataclass's default factory)


# The default of an ``__init__`` argument whose field has a default factory.
FRESH: Any = _Fresh()


# Per class, the names of the fields ``__eq__`` and ``__hash__`` compare, in order.
_COMPARED: dict[type, tuple[str, ...]] = {}


def _compared(obj: object) -> tuple[Any, ...]:
    names = _COMPARED.get(obj.__class__)
    if names is None:
        names = _COMPARED[obj.__class__] = tuple(f.name for f in fields(obj) if f.compare)  # type: ignore[arg-type]
    return tuple([getattr(obj, name) for name in names])


class Fields:
    """``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__`` of a
    frozen dataclass, as generated for a class with no subclasses."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{self.__class__.__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_compared(self))


class MutableFields:
    """``__repr__`` and ``__eq__`` of a plain dataclass (``@dataclass``), as generated for a
    class with no subclasses; its instances are unhashable, as generated."""

    __slots__ = ()

    __repr__ = Fields.__repr__

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
