"""Sections' data made strict JSON-compatible data (and masked).

What a section returns may hold anything: numbers JSON cannot hold,
application objects, deep nesting.  ``Normaliser`` makes it plain data in
the section's own thread (a registered section's objects may print
themselves there); a built-in section's data is masked in the same walk
(``Normaliser.masked``; see ``df_gmr.report``).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import json
import operator
from typing import Any

from df_gmr import speedups
from df_gmr.redact import MASK
from df_gmr.redact import Redactor

#: Mappings and lists nested deeper than this are not JSON-compatible data.
MAX_DEPTH = 64
#: Longest string a built-in section keeps from application memory before
#: masking (masking then cuts it shorter: see ``report.MAX_TEXT``).
MAX_RAW_TEXT = 65536
#: Integers JSON readers and ``str()`` refuse (Python's default limit).
MAX_INT_DIGITS = 4300
_NOT_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
#: Integers below this need no digit count.
_LARGE = 10 ** 300


class Normaliser:
    """Turn what a section returns into strict JSON-compatible data.

    ``describe`` names what is not plain data: ``str`` for registered
    generators (oslo.reports models print themselves, in the section's
    own thread), a type name for built-in sections.  NaN and infinities
    become strings, as strict JSON has none; ``notes`` says so.  Raises
    ValueError for what cannot be written at all (an integer of more than
    ``MAX_INT_DIGITS`` digits, nesting deeper than ``MAX_DEPTH``).
    """

    def __init__(self, describe: Callable[[Any], str] = str,
                 max_text: int | None = None) -> None:
        self.describe = describe
        self.max_text = max_text
        self.not_finite = 0

    def notes(self) -> list[str]:
        """Return what the data lost on its way to JSON."""
        if not self.not_finite:
            return []
        return [f"{self.not_finite} numbers that JSON cannot hold (NaN, "
                "Infinity) are shown as strings"]

    def plain(self, value: Any, depth: int = 0) -> Any:
        """Return ``value`` as JSON-compatible data (see the class)."""
        kind = type(value)
        if kind is str:
            if self.max_text is not None and len(value) > self.max_text:
                return value[:self.max_text]  # cut shorter once masked
            return value
        if value is None or kind is bool or (
                kind is int and -_LARGE < value < _LARGE):
            return value
        if depth > MAX_DEPTH:
            msg = f"data nested deeper than {MAX_DEPTH} levels"
            raise ValueError(msg)
        if kind is dict:  # the common containers first, without ABC checks
            plain = {}
            for key, item in value.items():
                if type(key) is not str:
                    key = self._key(key)
                item_kind = type(item)
                # Plain values inline (once per value of a section): a
                # finite float too (x - x is 0.0 for those only; ages and
                # due times, several per greenthread).
                if item is None or item_kind is bool or (
                        item_kind is int and -_LARGE < item < _LARGE) or (
                        item_kind is str and self.max_text is None) or (
                        item_kind is float and item - item == 0.0):
                    plain[key] = item
                else:
                    plain[key] = self.plain(item, depth + 1)
            return plain
        if kind is list:
            return [item if type(item) is int and -_LARGE < item < _LARGE
                    else self.plain(item, depth + 1) for item in value]
        # issubclass(type(...)): isinstance() may ask the object itself.
        if issubclass(kind, bool):
            return bool(value)
        if issubclass(kind, int):
            return self._integer(int(value))
        if issubclass(kind, float):
            return self._float(float(value))
        if issubclass(kind, Mapping):
            return {self._key(key): self.plain(item, depth + 1)
                    for key, item in value.items()}
        if issubclass(kind, (list, tuple, set, frozenset)):
            # Lists of ids (100,000 greenthreads) are passed over inline.
            return [item if type(item) is int and -_LARGE < item < _LARGE
                    else self.plain(item, depth + 1) for item in value]
        return self.plain(self.describe(value), depth + 1)

    def masked(self, value: Any, redactor: Redactor, depth: int = 0,
               hidden: bool = False) -> Any:
        """Return ``redactor.walk(self.plain(value), hidden)`` in one walk.

        A built-in section's data is made plain and masked at once, in
        the section's thread (call ``redactor.begin`` first): strings,
        numbers, and exact dicts and lists here, anything else by
        ``plain`` and then ``redactor.walk``, with the same results and
        errors as the two walks.  ``hidden``: under a credential key.
        """
        kind = type(value)
        if kind is str:
            if self.max_text is not None and len(value) > self.max_text:
                value = value[:self.max_text]  # cut shorter once masked
            return redactor.string(value, hidden)
        if value is None or kind is bool:
            return value
        if (kind is int and -_LARGE < value < _LARGE) or (
                kind is float and value - value == 0.0):
            return MASK if hidden else value
        if depth <= MAX_DEPTH and kind is dict:
            # Most of a section's dicts mask to themselves (a group's
            # members, thousands): said in C in one pass, where built.
            if not hidden and _unchanged is not None and _unchanged(
                    value, *redactor.memos(), self.max_text,
                    MAX_DEPTH - depth):
                return value
            masked: dict[str, Any] | None = None
            keys = redactor.keys()
            max_text = self.max_text
            for given, item in value.items():
                key = given if type(given) is str else self._key(given)
                key, hides = keys.get(key) or redactor.key(key)
                item_kind = type(item)
                # Plain values inline, as in plain() (once per value).
                if not hides and (item is None or item_kind is bool or (
                        item_kind is int and -_LARGE < item < _LARGE) or (
                        item_kind is float and item - item == 0.0)):
                    found = item
                elif item_kind is str and (
                        max_text is None or len(item) <= max_text):
                    # What masked() does with it, one call fewer.
                    found = redactor.string(item, hides)
                else:
                    found = self.masked(item, redactor, depth + 1, hides)
                if masked is None:
                    if found is item and key is given:
                        continue
                    masked = self._masked_before(value, given, redactor,
                                                 depth)
                masked[key] = found
            # Nothing changed (most of a section's dicts): the dict itself,
            # no copy made, so that a report's peak memory holds one copy
            # of its data, not two (page faults, see benchmarks).
            return value if masked is None else masked
        if depth <= MAX_DEPTH and kind is list:
            if not hidden and (_small_ints(value) if _unchanged is None
                               else _unchanged(value, *redactor.memos(),
                                               self.max_text,
                                               MAX_DEPTH - depth)):
                return value  # a group's ids (100,000 of them): no copy
            copied = [item if type(item) is int and -_LARGE < item < _LARGE
                      and not hidden
                      else self.masked(item, redactor, depth + 1, hidden)
                      for item in value]
            # The same, item for item (identity, in C): the list itself.
            return value if all(map(operator.is_, copied, value)) \
                else copied
        return redactor.walk(self.plain(value, depth), hidden)

    def _masked_before(self, value: dict[Any, Any], given: Any,
                       redactor: Redactor, depth: int) -> dict[str, Any]:
        """Return the items of ``value`` before the key ``given`` (the
        first the walk changed), masked again as ``masked`` masks them.

        Again, not copied: the dict may have changed since they were read
        (live data, another thread, a subclass's conversion run by the
        walk), and nothing unmasked may reach a report.  Unchanged, they
        mask to themselves: no note or cut is counted twice.
        """
        keys = redactor.keys()
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if key is given:
                break
            if type(key) is not str:
                key = self._key(key)
            key, hides = keys.get(key) or redactor.key(key)
            copied[key] = self.masked(item, redactor, depth + 1, hides)
        return copied

    def _integer(self, value: int) -> int:
        if value.bit_length() > MAX_INT_DIGITS * 3.32:
            msg = (f"an integer of about {int(value.bit_length() / 3.32)} "
                   f"digits cannot be written (the limit is "
                   f"{MAX_INT_DIGITS} digits)")
            raise ValueError(msg)
        return value

    def _float(self, value: float) -> float | str:
        if value - value == 0.0:  # finite
            return value
        self.not_finite += 1
        return _NOT_FINITE.get(str(value), str(value))

    def _key(self, key: Any) -> str:
        if type(key) is str:
            return key
        if key is None or issubclass(type(key), (bool, int, float)):
            return json.dumps(self.plain(key))
        return str(self.describe(key))


def _small_ints(value: list[Any]) -> bool:
    """Say whether a list holds ints only, each below ``_LARGE`` (a
    group's ids): their types and bounds are read in C, no list made."""
    return bool(value) and type(value[0]) is int and \
        set(map(type, value)) == _INT_ONLY and \
        -_LARGE < min(value) and max(value) < _LARGE


_INT_ONLY = {int}
#: ``_sites.unchanged``: whether data masks to itself, in one C pass (the
#: masking walk's answer, see Normaliser.masked), or None.
_unchanged = getattr(speedups.module(), "unchanged", None)
if _unchanged is not None:
    speedups.used.note("masking")


def plain_data(value: Any) -> Any:
    """Return ``value`` as strict JSON-compatible data (see Normaliser)."""
    return Normaliser().plain(value)
