"""A built-in section's data is made plain and masked in one walk.

``Normaliser.masked`` must give exactly what the two walks it replaces
give (``Normaliser.plain``, then ``Redactor.data``): the same data, the
same cut strings and notes, the same errors.
"""

from __future__ import annotations

import collections
import enum
import math
from typing import Any

import pytest

from df_gmr import plain
from df_gmr import redact
from df_gmr import report
from df_gmr import sections
from df_gmr.plain import Normaliser

SECRETS = ["SeCrEtVaLuE", "pa ss/wd"]


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Thing:
    def __str__(self) -> str:  # never called for a built-in section
        return "SeCrEtVaLuE"


def listed(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": [value]}
    return value


LONG = "x" * 5000 + "SeCrEtVaLuE" + "y" * 100
CASES: list[Any] = [
    {"a": "rabbit://u:PW@h/", "b": 3, "c": 1.5, "d": None, "e": True},
    {"password": "x", "user": "u", "tokens": ["a", "b", 7, None, False],
     "auth": {"api_key": 5, "user": "u", "note": "password=abc"},
     "keystone_authtoken": [{"name": "n", "value": "v"}],
     "verify_token": True, "api_key": [1, [2, "three"]]},
    {"k SeCrEtVaLuE": ["x SeCrEtVaLuE y", "pa%20ss%2Fwd", "abc"],
     "pa ss/wd": 1},
    {1: "one", None: "none", 2.5: "f", False: "no", (1, 2): "tuple"},
    {"nan": math.nan, "inf": [math.inf, -math.inf],
     "password": math.nan, "secret": [math.inf]},
    {"big": 10 ** 400, "ok": -(10 ** 299), "colour": Colour.RED,
     "secret_colour": Colour.RED},
    {"t": (1, "SeCrEtVaLuE", {"password": "p"}), "s": {3},
     "fs": frozenset(["a"]), "thing": Thing(), "text": Text("password=1"),
     "password": Thing(), "od": collections.OrderedDict(password="p")},
    {"long": LONG, "raw": "z" * 70000 + "SeCrEtVaLuE",
     "password": LONG, "list": [LONG, LONG]},
    [1, 2, 10 ** 301, "SeCrEtVaLuE", [math.nan], {"token": 3}],
    nested(30),
    "SeCrEtVaLuE at the top",
    10 ** 5000,
    nested(70),
    {"deep": nested(64)},
    # The first change after unchanged keys, a key masked among them.
    {"a": 1, "b": "x", "c": {"d": "y"}, "k pa ss/wd": 2, "e": "z",
     "f": "pa ss/wd", 3: "g", "h": [1, "i"], "token": "t", "j": None},
    # Lists of ints (a group's ids), passed over whole when every item is
    # a plain int below the limit: not under a credential key, not a bool
    # or an int subclass among them, not an integer too long to write.
    {"ids": list(range(-5, 500)), "api_key": [1, 2, 3],
     "flags": [1, True, 2], "colours": [1, Colour.RED],
     "last_big": [1, 2, 10 ** 301], "empty": [], "one": [7]},
    [3, 2, 1],
    listed(64),
    listed(70),
]


def two_walks(value: Any, patterns: bool) -> tuple[Any, list[str], int]:
    normaliser = Normaliser(describe=_type_name,
                            max_text=plain.MAX_RAW_TEXT)
    redactor = redact.Redactor(SECRETS)
    masked = redactor.data(normaliser.plain(value), patterns,
                           report.MAX_TEXT)
    return masked, normaliser.notes(), redactor.cut_count


def one_walk(value: Any, patterns: bool) -> tuple[Any, list[str], int]:
    normaliser = Normaliser(describe=_type_name,
                            max_text=plain.MAX_RAW_TEXT)
    redactor = redact.Redactor(SECRETS)
    redactor.begin(patterns, report.MAX_TEXT)
    masked = normaliser.masked(value, redactor)
    return masked, normaliser.notes(), redactor.cut_count


def _type_name(value: Any) -> str:
    return type(value).__name__


def outcome(walk: Any, value: Any, patterns: bool) -> Any:
    try:
        return walk(value, patterns)
    except (ValueError, RecursionError) as error:
        return type(error), str(error)


@pytest.mark.parametrize("patterns", [True, False])
@pytest.mark.parametrize("index", range(len(CASES)))
def test_one_walk_gives_what_the_two_walks_give(index, patterns):
    value = CASES[index]
    one, two = outcome(one_walk, value, patterns), \
        outcome(two_walks, value, patterns)
    assert one == two
    # In the same order, too (dicts compare equal in any order; a report
    # is rendered in theirs).
    assert _keys_in_order(one) == _keys_in_order(two)


def _keys_in_order(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, _keys_in_order(item)) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [_keys_in_order(item) for item in value]
    return None


def test_the_cases_mask_cut_and_fail():
    # The corpus is worth its name: each of these outcomes occurs.
    masked, notes, cut = one_walk(CASES[7], True)
    assert cut == 4 and masked["password"] == redact.MASK
    assert "SeCrEtVaLuE" not in repr(masked)
    masked, notes, _ = one_walk(CASES[4], True)
    assert masked["nan"] == "NaN" and masked["password"] == redact.MASK
    assert notes and "NaN" in notes[0]
    assert outcome(one_walk, CASES[11], True)[0] is ValueError
    assert outcome(one_walk, CASES[12], True)[0] is ValueError
    assert outcome(one_walk, CASES[-1], True)[0] is ValueError
    masked, _, _ = one_walk(CASES[1], True)
    assert masked["tokens"] == [redact.MASK, redact.MASK, redact.MASK, None,
                                False]
    assert masked["auth"] == {"api_key": redact.MASK, "user": "u",
                              "note": "password=***"}
    masked, _, _ = one_walk(CASES[1], False)  # secrets only
    assert masked["password"] == "x"
    ints = CASES[15]
    masked, _, _ = one_walk(ints, True)
    assert masked["ids"] is ints["ids"]  # kept whole, not copied
    assert masked["api_key"] == [redact.MASK] * 3
    assert masked["flags"] == [1, True, 2]


def test_a_reports_sections_are_masked_in_their_thread():
    # Built-in sections: masked where they were collected (one walk);
    # registered ones by the reporting thread, as before.
    from df_gmr.sections import package

    context = report.ReportContext(section_timeout=5)
    built = report.build(context, [
        package.SECTION,
        sections.Section("custom", "Custom",
                         lambda _: {"password": "p", "v": "SeCrEt12"},
                         lambda data: [str(data)], max_bytes=1000)])
    by_name = {result.name: result for result in built.sections}
    assert by_name["package"].masked
    assert not by_name["custom"].masked
    assert by_name["custom"].data == {"password": redact.MASK,
                                      "v": "SeCrEt12"}


def test_what_the_walk_leaves_unchanged_is_kept_and_never_changed():
    import copy

    clean = {"groups": [{"ids": list(range(2000)), "members": [
        {"id": 7, "wait": {"due_in": 1.5, "fd_is": "socket"}}] * 3,
        "stack": [{"file": "a.py", "code": "x = 1"}]}], "total": 3}
    masked, _, _ = one_walk(clean, True)
    # Nothing to mask or make plain: the very objects (no second copy of a
    # section's data at the report's peak).
    assert masked is clean
    secret = {"groups": [{"ids": [1, 2], "members": [
        {"id": 7, "wait": {"object": "Thing SeCrEtVaLuE"}},
        {"id": 8, "wait": {"due_in": 2.0}}]}], "total": 2}
    before = copy.deepcopy(secret)
    masked, _, _ = one_walk(secret, True)
    assert "SeCrEtVaLuE" not in repr(masked)
    assert secret == before  # the input is never changed in place
    # What changed is new, up to the top; what did not is kept.
    assert masked is not secret
    assert masked["groups"][0]["members"][0] is not \
        secret["groups"][0]["members"][0]
    assert masked["groups"][0]["members"][1] is \
        secret["groups"][0]["members"][1]
    assert masked["groups"][0]["ids"] is secret["groups"][0]["ids"]


class Late(float):
    """A float subclass whose conversion, run by the walk, changes the
    dict it is in: live data another thread updates meanwhile."""

    target: dict[str, Any] = {}

    def __float__(self) -> float:
        Late.target["password"] = "hunter2"
        Late.target["note"] = "SeCrEtVaLuE"
        return 2.0


def test_a_dict_changed_during_the_walk_leaks_nothing():
    # The walk read "password" and "note" unchanged, then changed "load":
    # what it keeps of the items before is masked again, never copied as
    # the dict has them now.
    live: dict[str, Any] = {"password": None, "note": "ok", "load": Late(1)}
    Late.target = live
    masked, _, _ = one_walk(live, True)
    assert "hunter2" not in repr(masked)
    assert "SeCrEtVaLuE" not in repr(masked)
    assert masked["load"] == 2.0


# -- the C check (df_gmr._sites.unchanged) ------------------------------------
# Where the C module was built, a dict or list that masks to itself is
# told in one C pass over the walk's memos (plain._unchanged): what the
# walk has seen before.  So the cases below repeat a shape, then change
# one thing in a later copy: each change must be walked, in C's absence
# and presence alike.

MEMBER = {"id": 7, "wait": {"kind": "sleep", "due_in": 1.5, "fd_is": None,
                            "ok": True}, "site": {"file": "a.py"}}


def members_then(changed: Any) -> list[Any]:
    """Three members of one shape (the walk's memos then know it), then
    ``changed``, then the first shape again."""
    return [MEMBER, dict(MEMBER, id=8), dict(MEMBER, id=9), changed,
            dict(MEMBER, id=10)]


WARM_CASES: list[Any] = [
    members_then(dict(MEMBER)),
    members_then(dict(MEMBER, site={"file": "a.py SeCrEtVaLuE"})),
    members_then(dict(MEMBER, note="password=abc")),
    [{"note": "password=abc"}, {"note": "password=abc"}],  # seen, masked
    [{"password": 1}, {"password": 1}, {"password": "p"}],  # hiding key
    [{"k SeCrEtVaLuE": 1}, {"k SeCrEtVaLuE": 1}],  # a masked key
    members_then(dict(MEMBER, id=math.nan)),
    members_then(dict(MEMBER, wait={"due_in": math.inf})),
    members_then(dict(MEMBER, id=2 ** 70)),  # over 64 bits, under the limit
    members_then(dict(MEMBER, id=10 ** 301)),  # over the limit
    members_then(dict(MEMBER, id=Colour.RED)),
    members_then(dict(MEMBER, site=Text("a.py"))),
    members_then(dict(MEMBER, site=("a.py",))),
    members_then(dict(MEMBER, wait={"kind": 1.5.__class__.__new__(
        type("F", (float,), {}), 1.5)})),
    members_then({7: "seven"}),
    [{"long": LONG}, {"long": LONG}],  # cut each time (report.MAX_TEXT)
    [{"raw": "z" * 70000}, {"raw": "z" * 70000}],  # over MAX_RAW_TEXT
    [list(range(50)), [*range(50), True], list(range(50))],
    *[[nested(levels), nested(levels)] for levels in (31, 32, 33)],
    *[[listed(levels), listed(levels)] for levels in (62, 63, 64)],
    [{"a": [1, 2]}, {"a": [1, 2]}, {"a": [1, 2, Thing()]}],
    [{"a": {}}, {"a": []}, {"a": {}}, {"a": []}],
]


@pytest.fixture(params=["c", "python"])
def check(request, monkeypatch) -> str:
    """Run the test with the C check, then without it (pure Python)."""
    if request.param == "c":
        if plain._unchanged is None:
            pytest.skip("df_gmr._sites.unchanged was not built here")
    else:
        monkeypatch.setattr(plain, "_unchanged", None)
    return request.param


def kept(result: Any, value: Any) -> Any:
    """Which containers of ``value`` the walk gave back as themselves."""
    if isinstance(result, dict) and isinstance(value, dict):
        return [result is value, [kept(item, value.get(key))
                                  for key, item in result.items()]]
    if isinstance(result, list) and isinstance(value, (list, tuple)):
        return [result is value, [kept(*pair)
                                  for pair in zip(result, value, strict=True)]]
    return None


@pytest.mark.parametrize("patterns", [True, False])
@pytest.mark.parametrize("index", range(len(WARM_CASES)))
def test_the_c_check_changes_nothing_the_walk_gives(check, index, patterns,
                                                     monkeypatch):
    value = WARM_CASES[index]
    got = outcome(one_walk, value, patterns)
    monkeypatch.setattr(plain, "_unchanged", None)
    reference = outcome(one_walk, value, patterns)
    assert got == reference
    assert _keys_in_order(got) == _keys_in_order(reference)
    if not isinstance(got[0], type):  # not an error
        # The same objects kept, the same ones copied.
        assert kept(got[0], value) == kept(reference[0], value)
        assert "SeCrEtVaLuE" not in repr(got[0])


def test_the_warm_cases_change_what_they_say():
    # The corpus is worth its name: each change is masked, cut or kept.
    masked, _, _ = one_walk(WARM_CASES[1], True)
    assert masked[3]["site"]["file"] == "a.py ***"
    assert masked[0] is WARM_CASES[1][0] and masked[4] is WARM_CASES[1][4]
    masked, _, _ = one_walk(WARM_CASES[3], True)
    assert masked == [{"note": "password=***"}] * 2
    masked, _, _ = one_walk(WARM_CASES[4], True)
    assert masked == [{"password": redact.MASK}] * 3
    masked, notes, _ = one_walk(WARM_CASES[6], True)
    assert masked[3]["id"] == "NaN" and notes
    masked, _, cut = one_walk(WARM_CASES[15], True)
    assert cut == 2


def test_the_c_check_spares_the_walk_of_known_members(check):
    # A group's members of one shape: with the C check, each is one
    # masked() call (its dict told unchanged), not one per nested dict.
    calls = []

    class Counting(Normaliser):
        def masked(self, value: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(type(value))
            return super().masked(value, *args, **kwargs)

    members = [dict(MEMBER, id=index) for index in range(1000)]
    redactor = redact.Redactor(SECRETS)
    redactor.begin(True, report.MAX_TEXT)
    assert Counting(max_text=plain.MAX_RAW_TEXT).masked(
        members, redactor) is members
    dicts = calls.count(dict)
    if check == "c":
        assert dicts < 1010, dicts
    else:
        assert dicts >= 2000, dicts  # each member's wait and site too
