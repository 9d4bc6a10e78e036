"""An object's own __dict__ is read without running its class's code; a
type whose instances can have none is remembered, and only such a type."""

from __future__ import annotations

import threading

from df_gmr import naming


class Plain:
    def __init__(self) -> None:
        self.value = 1


class Slotted:
    __slots__ = ("value",)


class MayHaveADict:
    """No dict slot, but a ``__dict__`` of its own making: one instance
    has none, another has one; the type is never remembered."""

    __slots__ = ("_namespace",)

    @property
    def __dict__(self):  # type: ignore[override]
        return self._namespace  # AttributeError until it is set


def test_objects_with_a_dict_answer_from_it_and_are_not_remembered():
    plain = Plain()
    assert naming.instance_dict(plain) == {"value": 1}
    assert naming.stored_attribute(plain, "value") == 1
    assert Plain not in naming._DICTLESS


def test_types_that_can_have_no_dict_are_remembered():
    for owner in (None, threading.Lock(), Slotted()):
        assert naming.instance_dict(owner) is None
        assert naming.stored_attribute(owner, "value", "none") == "none"
        assert type(owner) in naming._DICTLESS
        # Asked again: the same answer, from the memo.
        assert naming.instance_dict(owner) is None


def test_a_type_whose_mro_names_a_dict_is_asked_every_time():
    without, with_one = MayHaveADict(), MayHaveADict()
    with_one._namespace = {"value": 2}
    assert naming.instance_dict(without) is None
    assert MayHaveADict not in naming._DICTLESS
    assert naming.instance_dict(with_one) == {"value": 2}
