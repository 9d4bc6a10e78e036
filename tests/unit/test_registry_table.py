"""df_gmr._sites.Registry holds what a dict would, in the dict's order.

The spawn hook's registry (``greenlets._alive``) is this table where the
C module is built, a dict elsewhere: every answer must be the dict's.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
from typing import Any
import weakref

import pytest

from tests import compiled
from tests.daemons import child_env
from tests.daemons import outcome
from tests.daemons import run_python


class Key:
    """A stand-in for a greenlet: hashed by identity, as greenlets are."""


@pytest.fixture
def registry_type() -> Any:
    reason = compiled.why_not_built()
    if reason:
        pytest.skip(f"df_gmr._sites: {reason}")
    from df_gmr import _sites  # type: ignore[attr-defined]

    return _sites.Registry


@pytest.mark.parametrize("keys", [3, 60, 5000])
def test_every_operation_answers_as_a_dict_does(registry_type, keys):
    # Puts, pops, gets and clears at random over a pool of keys: through
    # growing and shrinking, each answer the dict's, the same objects, and
    # every copy in the dict's order (a report lists greenthreads so).
    for seed in range(4):
        chance = random.Random(seed)
        table, model = registry_type(), {}
        pool = [Key() for _ in range(keys)]
        for step in range(12_000):
            key, roll = chance.choice(pool), chance.random()
            if roll < 0.45:
                site = (step,) if chance.random() < 0.5 else None
                table[key] = site
                model[key] = site
            elif roll < 0.85:
                assert table.pop(key, "none") is model.pop(key, "none")
            elif roll < 0.95:
                assert table.get(key) is model.get(key)
                assert table.get(key, "none") is model.get(key, "none")
                assert (key in table) is (key in model)
            elif roll < 0.951:
                table.clear()
                model.clear()
            assert len(table) == len(model)
        assert list(table.copy().items()) == list(model.items())
        assert table.keys() == list(model)
        assert list(table) == list(model)
        assert table.items() == list(model.items())
        first = {"first": None}
        assert list(table.copy(first).items()) == [("first", None),
                                                  *model.items()]
        assert first == {"first": None}


class OwnHash(Key):
    """A greenlet subclass may hash itself, running Python code."""

    def __hash__(self) -> int:
        return 7


def test_keys_that_hash_themselves_are_copied_alike(registry_type):
    table, model = registry_type(), {}
    for key in [Key(), OwnHash(), Key(), OwnHash()]:
        table[key] = model[key] = (id(key),)
    assert list(table.copy().items()) == list(model.items())
    assert list(table.copy(None).items()) == list(model.items())
    first = {OwnHash(): ("first",)}
    assert list(table.copy(first).items()) == [*first.items(),
                                               *model.items()]


def test_a_put_again_keeps_its_place_and_a_pop_loses_it(registry_type):
    table, (first, second) = registry_type(), (Key(), Key())
    table[first], table[second] = (1,), (2,)
    table[first] = (3,)
    assert table.items() == [(first, (3,)), (second, (2,))]
    del table[first]
    table[first] = (4,)
    assert table.keys() == [second, first]


def test_it_refuses_what_a_dict_refuses(registry_type):
    table = registry_type()
    missing = Key()
    with pytest.raises(KeyError):
        table.pop(missing)
    with pytest.raises(KeyError):
        del table[missing]
    with pytest.raises(KeyError):
        table[missing]
    with pytest.raises(TypeError, match="takes no arguments"):
        registry_type({})
    with pytest.raises(TypeError, match="1 or 2 arguments"):
        table.get()
    with pytest.raises(TypeError, match="needs a dict or None"):
        table.copy([])


def test_it_keeps_no_reference_it_was_not_given(registry_type):
    key, site = Key(), (1.5,)
    before = sys.getrefcount(key), sys.getrefcount(site)
    table = registry_type()
    for _ in range(1000):
        table[key] = site
        table.pop(key)
        table[key] = site
        del table[key]
        table[key] = site
        table.copy()
        table.items()
        table.keys()
        table.clear()
    assert (sys.getrefcount(key), sys.getrefcount(site)) == before


def test_clear_and_its_end_give_its_memory_back(registry_type):
    keys = [Key() for _ in range(500)]

    def churn() -> None:
        for _ in range(200):
            table = registry_type()
            for key in keys:
                table[key] = None
            table.clear()
            for key in keys[:100]:
                table[key] = None
            del table

    churn()  # warm: what the first round allocates for good
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        churn()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_a_cycle_through_it_is_collected(registry_type):
    table, key = registry_type(), Key()
    key.table = table  # type: ignore[attr-defined]
    table[key] = None
    gone = weakref.ref(key)
    del table, key
    gc.collect()
    assert gone() is None


def test_a_finaliser_that_spawns_while_an_entry_goes_finds_it_whole(
        registry_type):
    # Taking an entry out may free the greenlet, whose finaliser may spawn
    # (put an entry): the table must be whole by then.
    table = registry_type()

    class Spawns:
        def __del__(self) -> None:
            for _ in range(200):  # enough to grow the table meanwhile
                table[Key()] = ("put while freeing",)

    table[Spawns()] = None
    table.pop(table.keys()[0])
    assert len(table) == 200
    table[Spawns()] = None
    table.clear()
    assert len(table) == 200
    assert {site for _, site in table.items()} == {("put while freeing",)}


def test_its_memory_follows_what_it_holds(registry_type):
    # Grown for a burst, it keeps a size that fits a churn of batches (a
    # dict rebuilt itself at each batch), and gives the memory back once
    # the service settles lower.
    table = registry_type()
    empty = sys.getsizeof(table)
    burst = [Key() for _ in range(100_000)]
    for key in burst:
        table[key] = None
    grown = sys.getsizeof(table)
    assert grown > 100_000 * 16
    for key in burst:
        table.pop(key)
    assert sys.getsizeof(table) == grown
    del burst
    sizes = []
    for _ in range(9):
        batch = [Key() for _ in range(40_000)]
        for key in batch:
            table[key] = None
        sizes.append(sys.getsizeof(table))
        for key in batch:
            table.pop(key)
    assert sizes[-3:] == [sizes[-1]] * 3, sizes
    assert empty < sizes[-1] < grown, sizes
    few = [Key() for _ in range(10)]
    for _ in range(200_000):
        for key in few:
            table[key] = None
        for key in few:
            table.pop(key)
        if sys.getsizeof(table) == empty:
            break
    assert sys.getsizeof(table) == empty


def test_the_spawn_hook_uses_it_where_built_and_a_dict_where_not():
    reason = compiled.why_not_built()
    code = (
        "import eventlet; eventlet.monkey_patch()\n"
        "from df_gmr import greenlets\n"
        "greenlets.install()\n"
        "threads = [eventlet.spawn(eventlet.sleep, 1) for _ in range(5)]\n"
        "eventlet.sleep(0)\n"
        "print(type(greenlets._alive).__name__,\n"
        "      list(greenlets.tracked_with_sites())[-5:] == threads)\n")
    pure = run_python(code, env=child_env(DF_GMR_PURE_PYTHON="1"))
    assert pure.stdout.split() == ["dict", "True"], outcome(pure)
    if reason:
        pytest.skip(f"df_gmr._sites: {reason}")
    built = run_python(code, env=child_env())
    assert built.stdout.split() == ["Registry", "True"], outcome(built)
