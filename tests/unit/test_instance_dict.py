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


class Looked:
    """Counts the lookups its instances' class code makes."""

    calls = 0

    def __init__(self) -> None:
        self.value = 3

    def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return object.__getattribute__(self, name)


class Fallback:
    def __init__(self) -> None:
        self.value = 4

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        raise AssertionError(f"__getattr__ ran for {name}")


class Later:
    def __init__(self) -> None:
        self.value = 5


def test_a_plain_type_is_read_the_short_way_and_answers_the_same():
    plain = Plain()
    naming.forget_plain_types()
    assert naming.instance_dict(plain) == {"value": 1}
    assert Plain in naming._PLAIN
    assert naming.instance_dict(plain) is vars(plain)
    assert naming.stored_attribute(Plain(), "value") == 1


def test_types_with_their_own_lookup_or_dict_are_never_plain():
    looked, fallback = Looked(), Fallback()
    for _ in range(2):
        assert naming.instance_dict(looked) == {"value": 3}
        assert naming.instance_dict(fallback) == {"value": 4}
    assert Looked.calls == 0  # its __getattribute__ never ran
    with_one = MayHaveADict()
    with_one._namespace = {"value": 2}
    assert naming.instance_dict(with_one) == {"value": 2}
    # A later instance without its own namespace still answers None.
    assert naming.instance_dict(MayHaveADict()) is None
    assert not {Looked, Fallback, MayHaveADict} & naming._PLAIN


def test_a_class_given_a_lookup_later_is_checked_again_in_the_next_report():
    later = Later()
    assert naming.instance_dict(later) == {"value": 5}
    assert Later in naming._PLAIN
    calls = []

    def hook(self, name):  # type: ignore[no-untyped-def]
        calls.append(name)
        return object.__getattribute__(self, name)

    Later.__getattribute__ = hook  # type: ignore[method-assign]
    try:
        naming.forget_plain_types()  # as each report begins
        assert naming.instance_dict(later) == {"value": 5}
        assert naming.instance_dict(later) == {"value": 5}
        assert Later not in naming._PLAIN
        assert calls == []
    finally:
        del Later.__getattribute__


class Odd(dict):  # type: ignore[type-arg]
    def get(self, *args):  # type: ignore[no-untyped-def, override]
        raise AssertionError("a dict subclass's get ran")


def test_an_instance_given_a_dict_subclass_answers_none():
    usual, odd = Plain(), Plain()
    odd.__dict__ = Odd(value=6)
    assert naming.instance_dict(usual) == {"value": 1}
    assert Plain in naming.plain_types()
    # The inline reading (vars) sees the subclass: its readers check.
    assert type(vars(odd)) is Odd
    assert naming.instance_dict(odd) is None
    assert naming.stored_attribute(odd, "value", "none") == "none"


def test_a_thread_given_a_dict_subclass_is_listed_without_reading_it():
    from df_gmr.runtime import Snapshot
    from df_gmr.runtime.natives import Natives

    release = threading.Event()
    usual = threading.Thread(target=release.wait, args=(10,), daemon=True,
                             name="usual")
    odd = threading.Thread(target=release.wait, args=(10,), daemon=True,
                           name="odd")
    usual.start()
    odd.start()
    odd.__dict__ = Odd(odd.__dict__)
    try:
        snapshot = Snapshot(threading.get_ident())
        try:
            # Thread known plain: the describer reads it inline.
            assert naming.instance_dict(usual) is not None
            assert threading.Thread in naming.plain_types()
            members = {}
            for group in Natives(snapshot).groups():
                for member in group["members"]:
                    members[member["id"]] = member
            assert usual.ident is not None and odd.ident is not None
            assert members[usual.ident]["name"] == "usual"
            # Its fields unread (None), never its dict's own get().
            assert members.get(odd.ident, {}).get("name") is None
        finally:
            snapshot.release()
    finally:
        release.set()
        usual.join(10)
        odd.join(10)


def test_a_type_is_checked_for_plainness_once_per_report(monkeypatch):
    checked = []
    plain = naming._plain

    def counting(kind):  # type: ignore[no-untyped-def]
        checked.append(kind)
        return plain(kind)

    monkeypatch.setattr(naming, "_plain", counting)
    naming.forget_plain_types()
    for _ in range(3):
        naming.instance_dict(Fallback())  # never plain
        naming.instance_dict(Plain())
    assert checked == [Fallback, Plain]
    naming.forget_plain_types()  # the next report checks again
    naming.instance_dict(Fallback())
    assert checked == [Fallback, Plain, Fallback]
