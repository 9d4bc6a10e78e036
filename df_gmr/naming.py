"""Name application objects without running their code.

A report describes what it finds in the service's memory: a callable by
its qualified name (never its arguments: a ``functools.partial`` may hold
a password), any other object by its type, an exception by its type and
plain arguments.  Only attributes Python itself defines for those types,
or values stored in an object's ``__dict__``, are read: no property,
``__repr__``, ``__str__`` or ``__getattr__`` of the application runs, so
nothing can hang, raise or leak through them.
"""

from __future__ import annotations

import collections
import functools
import types
from typing import Any


def _qualified(module: Any, qualname: Any) -> str:
    if type(module) is str and module != "builtins":
        return f"{module}.{qualname}"
    return str(qualname)


def type_name(value: Any) -> str:
    """Return ``module.Qualname`` of ``value``'s type (no user code)."""
    kind = type(value)
    return _qualified(kind.__module__, kind.__qualname__)


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType,
                   types.MethodDescriptorType, types.WrapperDescriptorType,
                   types.ClassMethodDescriptorType, type)


_BOUND_BUILTINS = (types.BuiltinMethodType, types.MethodWrapperType)


def _owner_name(owner: Any) -> str:
    if issubclass(type(owner), type):  # a class method: the class itself
        return _qualified(owner.__module__, owner.__qualname__)
    return type_name(owner)


def callable_name(function: Any, depth: int = 0) -> str:
    """Return ``module.qualname`` of a callable, never its arguments.

    A ``functools.partial`` is ``partial(<its function>)``; a bound method
    is its class's qualified name plus the method's name; any other
    callable object is its type's name.  Only attributes that Python
    itself defines for those types are read: no application code runs.
    """
    kind = type(function)
    if depth > 10:
        return type_name(function)
    if issubclass(kind, functools.partial):
        return f"partial({callable_name(function.func, depth + 1)})"
    if kind is types.MethodType:
        inner = function.__func__
        name = inner.__name__ if type(inner) is types.FunctionType \
            else callable_name(inner, depth + 1)
        return f"{_owner_name(function.__self__)}.{name}"
    if kind in _BOUND_BUILTINS and not issubclass(
            type(function.__self__), (types.ModuleType, type(None))):
        return f"{_owner_name(function.__self__)}.{function.__name__}"
    if issubclass(kind, _FUNCTION_TYPES):
        return _qualified(getattr(function, "__module__", None),
                          function.__qualname__)
    return type_name(function)


def error_text(error: BaseException) -> str:
    """Return ``Type: message`` without running an exception's own code.

    The message shows when the exception's arguments are strings or small
    numbers (most exceptions); otherwise only the type does.
    """
    arguments = error.args if type(error.args) is tuple else ()
    shown = []
    for item in arguments:
        if type(item) is str:
            shown.append(item)
        elif type(item) in (int, float) and abs(item) < 1e300:
            shown.append(str(item))
        else:
            return type_name(error)
    if not shown:
        return type_name(error)
    return f"{type_name(error)}: {', '.join(shown)}"


#: Types whose instances have no ``__dict__`` at all (a C lock, a socket,
#: None, a class with ``__slots__``): found once each, so that asking one
#: again raises nothing (an exception made and caught was most of what
#: reading a C lock's chain cost).
_DICTLESS: set[type] = set()
_DICT_OFFSET = type.__dict__["__dictoffset__"]
_MRO = type.__dict__["__mro__"]
_NAMESPACE = type.__dict__["__dict__"]
#: Types whose instances have a ``__dict__`` and look attributes up as
#: ``object`` does (see ``_plain``), and every type checked for it: found
#: again in each report.
_PLAIN: set[type] = set()
_CHECKED: set[type] = set()


def instance_dict(owner: Any) -> dict[str, Any] | None:
    """Return ``owner``'s own ``__dict__`` (None: it has none, or an odd
    one).

    No property, ``__getattr__`` or ``__getattribute__`` of the owner's
    class runs (an application subclass may define them).
    """
    kind = type(owner)
    if kind in _PLAIN:
        # Its attributes are looked up by object's own code: ``vars``
        # reads what ``object.__getattribute__`` would, without the
        # slot wrapper's call (a new tuple per call).
        try:
            namespace = vars(owner)
        except Exception:  # never, from type's own descriptor: no harm
            return None
        return namespace if type(namespace) is dict else None
    if kind in _DICTLESS:
        return None
    try:
        namespace = object.__getattribute__(owner, "__dict__")
        if kind not in _CHECKED:  # once per type and report
            _CHECKED.add(kind)
            if _plain(kind):
                _PLAIN.add(kind)
    except Exception:  # no __dict__ (slots), or an odd descriptor
        # Remembered only when no instance of the type can have one: no
        # dict slot, and no class of its MRO names a ``__dict__`` (a
        # descriptor that may answer for another instance).
        if _DICT_OFFSET.__get__(kind) == 0 and not any(
                "__dict__" in vars(base) for base in kind.__mro__):
            _DICTLESS.add(kind)
        return None
    return namespace if type(namespace) is dict else None


def _plain(kind: type) -> bool:
    """Say whether ``kind``'s instances look attributes up as ``object``
    does and keep their ``__dict__`` where Python puts it: no class of
    its MRO defines ``__getattribute__`` or ``__getattr__``, and the
    first to name ``__dict__`` names the interpreter's own descriptor,
    not a property (read from the classes' own namespaces, through
    ``type``'s descriptors: no metaclass code runs)."""
    lookup = dict_found = False
    for base in _MRO.__get__(kind):
        names = _NAMESPACE.__get__(base)
        if not dict_found and "__dict__" in names:
            dict_found = True
            if type(names["__dict__"]) is not types.GetSetDescriptorType:
                return False
        if not lookup and ("__getattribute__" in names
                           or "__getattr__" in names):
            lookup = True
            if base is not object or "__getattr__" in names:
                return False
    return lookup and dict_found


def plain_types() -> set[type]:
    """Return the set of plain types (see ``_plain``) itself, for a loop
    that reads a million ``__dict__``s: ``vars(owner)`` of an instance of
    one of them is what ``instance_dict`` returns, when it is a ``dict``
    (an instance may have been given a dict subclass)."""
    return _PLAIN


def forget_plain_types() -> None:
    """Check every type again (a class may be given a ``__getattr__``
    later): called as each report begins."""
    _PLAIN.clear()
    _CHECKED.clear()


def stored_attribute(owner: Any, name: str, default: Any = None) -> Any:
    """Return ``owner.name`` as stored in its ``__dict__``, else ``default``.

    No property, ``__getattr__`` or ``__getattribute__`` of the owner's
    class runs (an application subclass may define them).
    """
    namespace = instance_dict(owner)
    return default if namespace is None else namespace.get(name, default)


_SIZED = (set, frozenset, list, tuple, dict, collections.deque)


def stored_length(value: Any) -> int | None:
    """Return ``len(value)`` of a built-in container, else None."""
    return len(value) if type(value) in _SIZED else None
