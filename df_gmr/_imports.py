"""Run a callback when a module is imported, or now if it already was.

df_gmr hooks eventlet and oslo.service without importing them itself:
importing eventlet before the service monkey-patches would change the
service, and a service that does not use them must not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import functools
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]

_callbacks: dict[str, list[Callback]] = {}


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported (maybe now)."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__spec__", None) is not None \
            and not _initialising(module):
        _run(callback, module)
        return
    # No lock: a threading lock made here, before a service monkey-patches,
    # would stay a native lock in a green world; imports of one module are
    # already serialised by the import system.
    _callbacks.setdefault(name, []).append(callback)
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def wrap_init(cls: Any, mark: str, *,
              before: Callable[..., None] | None = None,
              after: Callable[..., None] | None = None) -> None:
    """Wrap ``cls.__init__`` once (``mark`` names the class attribute that
    says it is done): ``before`` is called with the same arguments first,
    ``after`` once the original returned.  Whatever wraps it later wraps
    ours."""
    # A base already wrapped wraps its subclasses' inherited __init__.
    if getattr(cls, mark, False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        _quietly(before, self, args, kwargs)
        original(self, *args, **kwargs)
        _quietly(after, self, args, kwargs)

    cls.__init__ = init
    setattr(cls, mark, True)


def _quietly(hook: Callable[..., None] | None, owner: Any,
             args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # A hook's failure never reaches the service's constructor.
    if hook is None:
        return
    try:
        hook(owner, *args, **kwargs)
    except Exception as error:
        sys.stderr.write(f"df_gmr: hook on {type(owner).__name__} "
                         f"failed: {error!r}\n")


def _initialising(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _run(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as error:  # a hook must never break an import
        sys.stderr.write(f"df_gmr: hook for {module.__name__} failed: "
                         f"{error!r}\n")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> Any:
        if fullname not in _callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        callbacks = _callbacks.pop(module.__name__, [])
        for callback in callbacks:
            _run(callback, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
