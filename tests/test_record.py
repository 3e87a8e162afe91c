"""sandbox.record: a Record behaves as the frozen, slotted dataclass of the same body.

Each property is checked against a real dataclass twin, so a difference in either
direction fails (the launch path's value classes moved from one to the other, issue 19).
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from sandbox.policy.model import Policy, Rule, SourceRef
from sandbox.record import FrozenRecordError, Record, field, replace


class Rec(Record):
    name: str
    n: int
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    items: list[int] = field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Dc:
    name: str
    n: int
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = dataclasses.field(
        default_factory=dict, compare=False, repr=False, hash=False
    )
    items: list[int] = dataclasses.field(default_factory=list)


def _both(*args: Any, **kwargs: Any) -> tuple[Rec, Dc]:
    return Rec(*args, **kwargs), Dc(*args, **kwargs)


def test_construction_by_position_keyword_and_default() -> None:
    r, d = _both("a", 1, tags=("x",))
    assert (r.name, r.n, r.tags, r.extra, r.items) == (d.name, d.n, d.tags, d.extra, d.items)
    # a factory makes one object per instance, never a shared default
    r2 = Rec("b", 2)
    assert r2.items == [] and r2.items is not Rec("c", 3).items
    assert Rec.__match_args__ == Dc.__match_args__
    assert Rec.__slots__ == ("name", "n", "tags", "extra", "items")  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {"name": "a"}),  # missing a required field
        (("a", 1, (), {}, [], "six"), {}),  # too many positional
        (("a",), {"name": "b", "n": 1}),  # twice
        (("a", 1), {"nope": 1}),  # unknown
    ],
)
def test_bad_construction_is_a_type_error_for_both(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        Dc(*args, **kwargs)
    with pytest.raises(TypeError):
        Rec(*args, **kwargs)


def test_frozen() -> None:
    r = Rec("a", 1)
    with pytest.raises(FrozenRecordError):
        r.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):  # FrozenRecordError is one, as FrozenInstanceError
        del r.n
    with pytest.raises(AttributeError):
        setattr(r, "other", 1)  # noqa: B010 - not a field
    assert r.name == "a" and r.n == 1
    assert not hasattr(r, "__dict__")  # slotted, as the dataclasses were


def test_equality_and_hash_follow_the_compared_fields() -> None:
    r1, d1 = _both("a", 1, tags=("t",), extra={"k": 1})
    r2, d2 = _both("a", 1, tags=("t",), extra={"other": 2})
    assert (r1 == r2) is (d1 == d2) is True  # extra is compare=False
    r3, d3 = _both("a", 2, tags=("t",))
    assert (r1 == r3) is (d1 == d3) is False  # the allowed twin: a compared field differs
    assert r1 != d1 and d1 != r1  # another class is never equal
    h1, h2 = Rec("a", 1, tags=("t",), items=None), Rec("a", 1, tags=("t",), items=None)  # type: ignore[arg-type]
    assert hash(h1) == hash(h2) == hash(("a", 1, ("t",), None))
    with pytest.raises(TypeError):  # an unhashable compared field: unhashable, as dataclass
        hash(r1)
    with pytest.raises(TypeError):
        hash(d1)


def test_repr_matches_the_dataclass() -> None:
    r, d = _both("a", 1, tags=("x",), extra={"hidden": 1}, items=[2])
    assert repr(r) == repr(d).replace("Dc(", "Rec(")
    assert "hidden" not in repr(r)


def test_pickle_and_copy_round_trip() -> None:
    r = Rec("a", 1, tags=("x",), extra={"k": 1}, items=[1, 2])
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(r, protocol=proto))
        assert back == r and back.extra == {"k": 1}
    assert copy.copy(r) == r and copy.deepcopy(r).items is not r.items
    # a stored state of another layout (a cache entry from other code) is refused
    with pytest.raises(TypeError):
        Rec.__new__(Rec).__setstate__(("a", 1))


def test_replace() -> None:
    r, d = _both("a", 1, tags=("x",))
    r2, d2 = replace(r, n=5), dataclasses.replace(d, n=5)
    assert (r2.name, r2.n, r2.tags) == (d2.name, d2.n, d2.tags) == ("a", 5, ("x",))
    assert r.n == 1  # the original is unchanged
    with pytest.raises(TypeError):
        replace(r, nope=1)
    with pytest.raises(TypeError):
        replace(d, n=2)  # type: ignore[type-var]  # only records


def test_a_default_before_a_required_field_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default field"):

        class Bad(Record):
            a: int = 1
            b: int  # type: ignore[misc]


def test_the_policy_model_is_made_of_records(tmp_path: Any) -> None:
    """The model keeps its contract: equal rules compare equal, a changed one does not,
    and a policy's evaluator cache is not part of its value."""
    src = SourceRef("p.yaml", 3, 5)
    a = Rule("file_read", 1, "deny", ".env", src)
    assert a == Rule("file_read", 1, "deny", ".env", SourceRef("p.yaml", 3, 5))
    assert a != replace(a, effect="allow")
    assert hash(a) == hash(Rule("file_read", 1, "deny", ".env", src))
    assert repr(src) == "SourceRef(file='p.yaml', line=3, column=5)"
    policy = Policy.from_dict({"version": 1}, cwd=tmp_path, home=tmp_path)
    policy.cache["x"] = 1
    fresh = Policy.from_dict({"version": 1}, cwd=tmp_path, home=tmp_path)
    assert policy == fresh and "cache" not in repr(policy)
    assert pickle.loads(pickle.dumps(policy)) == policy


class Mut(Record, frozen=False):
    name: str
    handle: Any = field(repr=False)  # required, not shown
    items: list[int] = field(default_factory=list)


@dataclasses.dataclass(slots=True)
class MutDc:
    name: str
    handle: Any = dataclasses.field(repr=False)
    items: list[int] = dataclasses.field(default_factory=list)


def test_a_mutable_record_is_the_plain_dataclass() -> None:
    m, d = Mut("a", 7), MutDc("a", 7)
    assert repr(m) == repr(d).replace("MutDc(", "Mut(") == "Mut(name='a', items=[])"
    m.name, d.name = "b", "b"  # assignable
    assert m.name == d.name == "b"
    assert m == Mut("b", 7) and m != Mut("b", 8)
    with pytest.raises(TypeError):  # eq without frozen: unhashable, as the dataclass
        hash(m)
    with pytest.raises(TypeError):
        hash(d)
    with pytest.raises(TypeError):
        Mut("a")  # type: ignore[call-arg]  # handle is required
    assert replace(m, items=[1]).items == [1]
    with pytest.raises(FrozenRecordError):  # the frozen default stays frozen (twin)
        Rec("a", 1).n = 2  # type: ignore[misc]


class One(Record):
    x: int


class Empty(Record):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class OneDc:
    x: int


def test_one_field_and_no_field() -> None:
    assert One(1) == One(1) and One(1) != One(2)
    assert hash(One(1)) == hash(OneDc(1)) == hash((1,))
    assert repr(One(1)) == "One(x=1)"
    assert Empty() == Empty() and hash(Empty()) == hash(()) and repr(Empty()) == "Empty()"
    assert pickle.loads(pickle.dumps(One(3))) == One(3)
