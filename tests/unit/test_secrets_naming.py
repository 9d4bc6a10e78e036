"""Application objects are named by type and qualified name, never printed."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from df_gmr import naming
from df_gmr.runtime import waits


def connect(host: str, password: str | None = None) -> None:
    """A function whose partial carries a password."""


class Unprintable:
    """An object whose printing must never be asked for."""

    def __call__(self) -> None:
        pass

    def __repr__(self) -> str:
        raise AssertionError("repr() was called")

    __str__ = __repr__

    def method(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"attribute {name} was looked up")


NAMES = [
    (connect, f"{__name__}.connect"),
    (functools.partial(connect, password="s3cret"),
     f"partial({__name__}.connect)"),
    (functools.partial(Unprintable()), f"partial({__name__}.Unprintable)"),
    (Unprintable().method, f"{__name__}.Unprintable.method"),
    (Unprintable(), f"{__name__}.Unprintable"),
    (Unprintable, f"{__name__}.Unprintable"),
    ([].append, "list.append"),
    (len, "len"),
]


@pytest.mark.parametrize(("function", "expected"), NAMES,
                         ids=[expected for _, expected in NAMES])
def test_callables_are_named_without_their_arguments(function, expected):
    assert naming.callable_name(function) == expected


def test_error_text_never_prints_an_unprintable_argument():
    assert naming.error_text(KeyError(Unprintable())) == "KeyError"
    assert naming.error_text(OSError(2, "gone")) == (
        "FileNotFoundError: 2, gone")


def parked(meth: Any, *args: Any, **kwargs: Any) -> Any:
    """Stand for eventlet's tpool.execute: a frame holding ``meth``."""
    yield


def waiting_on(owner: Any) -> Any:
    """Stand for eventlet's Semaphore.acquire: a frame holding ``self``."""
    self = owner  # noqa: F841 - read from the frame's locals
    yield


def test_tpool_wait_names_a_partial_without_its_arguments():
    frame = parked(functools.partial(connect, "db", password="s3cret"))
    next(frame)
    details = waits.details("tpool", frame.gi_frame)
    assert details == {"calling": f"partial({__name__}.connect)"}


def test_tpool_wait_never_prints_the_callable():
    frame = parked(Unprintable())
    next(frame)
    details = waits.details("tpool", frame.gi_frame)
    assert details == {"calling": f"{__name__}.Unprintable"}


def test_semaphore_wait_reads_stored_attributes_only():
    class Sneaky(Unprintable):
        @property
        def balance(self) -> int:
            raise AssertionError("a property ran")

    owner = Sneaky()
    owner.__dict__.update(counter=0, _waiters=[1, 2])
    frame = waiting_on(owner)
    next(frame)
    details = waits.details("semaphore", frame.gi_frame)
    assert details["balance"] == -2 and details["waiters"] == 2
