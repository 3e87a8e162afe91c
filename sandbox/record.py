"""Frozen value classes without `dataclasses` (issue 19: the launch path's cost).

A rank-0 module (it imports nothing of landgate): every layer may use it.

`@dataclass(frozen=True, slots=True)` writes each class's __init__, __eq__, __hash__,
__repr__, __setattr__ ... as source text and exec()s it when the module is imported:
~0.5 ms per class on this machine, and `dataclasses` itself imports `inspect` (~6 ms).
`landgate run` defined ~45 of them before the agent started, about a third of the CLI's
own start-up.  A `Record` is the same value class with its methods written once, here:

    class Rule(Record):
        action: str
        index: int
        origin: str = "policy"
        cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

behaves as the frozen, slotted dataclass of the same body: instances are built by
keyword or position in declaration order, are immutable (FrozenRecordError, an
AttributeError, on assignment), compare equal field by field within one class, hash
like the tuple of their compared fields, print as `Rule(action='file_read', ...)`,
pickle and copy (the policy cache stores them), and `replace(obj, **changes)` makes a
changed copy.  Type checkers see the same through `dataclass_transform`.

`class NetSetup(Record, frozen=False)` is the plain (mutable, unhashable) @dataclass.

What it does not do (no user needs it): inheritance between records, InitVar, ordering,
`dataclasses.fields` / `asdict` (use `replace` and the attributes).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

# typing costs ~2 ms at import (issue 19), and every launch imports this module: its names
# are for the type checker (which reads TYPE_CHECKING as True); annotations are never
# evaluated here (`from __future__ import annotations`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar, dataclass_transform

    _T = TypeVar("_T")
    # For annotations only (not evaluated at run time): a TypeVar bound by name compiles
    # that name at import, and the interpreter's first compile() costs ~0.7 ms of every
    # launch (issue 19).
    _R = TypeVar("_R", bound="Record")


class FrozenRecordError(AttributeError):
    """Assignment to a field of a record (dataclasses' FrozenInstanceError)."""


class _Field:
    """One field: its name, its default (a value or a factory) and whether it counts."""

    __slots__ = ("compare", "default", "factory", "name", "repr")

    def __init__(
        self,
        name: str,
        default: object,
        factory: Callable[[], Any] | None,
        compare: bool,
        rep: bool,
    ) -> None:
        self.name = name
        self.default = default
        self.factory = factory
        self.compare = compare
        self.repr = rep


class _Spec:
    """What `field(...)` returns in a class body; replaced by a _Field at class creation."""

    __slots__ = ("compare", "factory", "repr")

    def __init__(self, factory: Callable[[], Any] | None, compare: bool, rep: bool) -> None:
        self.factory = factory
        self.compare = compare
        self.repr = rep


_MISSING: Any = object()


def field(
    *,
    default_factory: Callable[[], _T] | None = None,
    compare: bool = True,
    repr: bool = True,
) -> _T:
    """A field whose default is made per instance (a mutable default), or (without one) a
    required field; either may be left out of equality, hashing and repr (compare=False /
    repr=False)."""
    # The type checker sees the field's value type (dataclasses.field does the same);
    # RecordMeta takes the _Spec out of the class body.
    return _Spec(default_factory, compare, repr)  # type: ignore[return-value]


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object as a tuple: operator.attrgetter (C; a dataclass's
    generated __eq__/__hash__ build the same tuple inline), which returns a bare value for
    one name, so that case and none are wrapped."""
    if len(names) >= 2:
        return attrgetter(*names)
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


if not TYPE_CHECKING:

    def dataclass_transform(**_kwargs: object) -> Callable[[type], type]:
        """typing.dataclass_transform at run time: it only marks the class for checkers."""
        return lambda cls: cls


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class RecordMeta(type):
    """Turns a class body's annotated names into slots and fields (their defaults are taken
    out of the class: a slot and a class attribute of one name cannot coexist)."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], *, frozen: bool = True
    ) -> RecordMeta:
        if not bases:  # Record itself
            return super().__new__(mcls, name, bases, ns)
        if bases != (Record,):
            raise TypeError(f"record {name}: records derive from Record alone")
        fields: list[_Field] = []
        for fname, ann in ns.get("__annotations__", {}).items():
            if isinstance(ann, str) and ann.startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = ns.pop(fname, _MISSING)
            if isinstance(value, _Spec):
                fields.append(_Field(fname, _MISSING, value.factory, value.compare, value.repr))
            else:
                fields.append(_Field(fname, value, None, True, True))
        seen_default = False
        for f in fields:
            has_default = f.default is not _MISSING or f.factory is not None
            if seen_default and not has_default:
                raise TypeError(f"record {name}: non-default field {f.name!r} after a default")
            seen_default = seen_default or has_default
        names = tuple(f.name for f in fields)
        ns["__slots__"] = names
        ns["__match_args__"] = names
        ns["_fields_"] = tuple(fields)
        ns["_compared_"] = staticmethod(_getter(tuple(f.name for f in fields if f.compare)))
        ns["_values_"] = staticmethod(_getter(names))
        ns["_shown_"] = tuple(f.name for f in fields if f.repr)
        if not frozen:
            # @dataclass (not frozen): assignable fields, and so no hash (eq without hash).
            ns["__setattr__"] = object.__setattr__
            ns["__delattr__"] = object.__delattr__
            ns["__hash__"] = None
        return super().__new__(mcls, name, bases, ns)


class Record(metaclass=RecordMeta):
    """Base of the frozen value classes (see the module's docstring)."""

    __slots__ = ()
    _fields_: ClassVar[tuple[_Field, ...]]
    # The compared fields' values, and all fields' values, of an instance as one tuple.
    _compared_: ClassVar[staticmethod[[Any], tuple[Any, ...]]]
    _values_: ClassVar[staticmethod[[Any], tuple[Any, ...]]]
    _shown_: ClassVar[tuple[str, ...]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Hundreds of records per launch (issue 19): the positional values set in one pass,
        # then only the fields after them looked at.
        names: tuple[str, ...] = self.__slots__  # the fields' names, in order (RecordMeta)
        cls = type(self).__qualname__
        n = len(args)
        if n > len(names):
            raise TypeError(f"{cls}() takes {len(names)} positional arguments but {n} were given")
        if kwargs:
            for name in names[:n]:
                if name in kwargs:
                    raise TypeError(f"{cls}() got multiple values for argument {name!r}")
        setter = object.__setattr__
        for name, value in zip(names, args, strict=False):  # args may be fewer
            setter(self, name, value)
        for f in self._fields_[n:]:
            if f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.factory is not None:
                value = f.factory()
            elif f.default is not _MISSING:
                value = f.default
            else:
                raise TypeError(f"{cls}() missing required argument: {f.name!r}")
            setter(self, f.name, value)
        if kwargs:
            raise TypeError(f"{cls}() got an unexpected keyword argument {next(iter(kwargs))!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        key = self._compared_
        return key(self) == key(other)

    def __hash__(self) -> int:
        return hash(self._compared_(self))

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._shown_)
        return f"{type(self).__qualname__}({body})"

    # Pickle and copy: the fields' values in order (no __dict__ to carry them).
    def __getstate__(self) -> tuple[Any, ...]:
        return self._values_(self)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        names: tuple[str, ...] = self.__slots__  # the fields' names, in order (RecordMeta)
        if state.__class__ is not tuple or len(state) != len(names):
            raise TypeError(f"{type(self).__qualname__}: a stored state of another layout")
        # Once per record of a cached policy (hundreds per launch): the names and the
        # setter looked up once, not per field.
        setter = object.__setattr__
        for name, value in zip(names, state, strict=True):
            setter(self, name, value)


def replace(obj: _R, /, **changes: Any) -> _R:
    """A copy of the record `obj` with `changes` (dataclasses.replace)."""
    if not isinstance(obj, Record):
        raise TypeError(f"replace() needs a record, not {type(obj).__name__}")
    for f in obj._fields_:
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)
