"""Mask credentials inside configuration values and command lines.

Options marked ``secret=True`` are masked whole by the configuration
section.  This module catches what hides in ordinary values: the password
of a URL (``mysql+pymysql://nova:PASSWORD@db/nova``, passwords holding
``/`` or ``@``, several hosts in one ``rabbit://`` URL), ``password=...``
style pairs (quoted or not, ``admin_password``, ``--password x``), and
dict entries whose key names a credential, ``"password": "..."`` in JSON.

``callable_name``, ``type_name`` and ``error_text`` describe application
objects by their type and qualified name only: they never call ``repr()``
or ``str()`` on them, nor any attribute look-up an object could override,
so a ``functools.partial(f, password=...)`` shows ``partial(module.f)``
and a ``__repr__`` that hangs is never run.

(It imports nothing: it runs in the reporting thread, where a first
import would take the import lock.)
"""

from __future__ import annotations

import collections
import functools
import re
import types
from typing import Any

MASK = "***"

#: Words that make a key a credential (admin_password, secret_key, ...).
CREDENTIAL = (r"(?:password|passwd|passphrase|pwd|secret|token|auth_key"
              r"|credential)")
_CREDENTIAL_KEY = re.compile(rf"{CREDENTIAL}", re.IGNORECASE)

# scheme://user:PASSWORD@host -- greedy up to the last '@' of that URL (or
# of that comma-separated host), so a password may hold '/' or '@'.
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>(?:[a-zA-Z][a-zA-Z0-9+.-]*://|,)[^:/@,\s]*:)"
    r"(?P<password>[^\s,]+)@"
)
_KEY_VALUE = re.compile(
    rf"(?P<prefix>(?<![A-Za-z0-9])[\w-]*{CREDENTIAL}[\w-]*['\"]?\s*[=:]\s*)"
    r"(?P<password>'[^']*'|\"[^\"]*\"|[^\s&;,]+)",
    re.IGNORECASE,
)
#: An argument naming a credential: ``--password``, or a dotted setting
#: name as in ``iscsiadm -n node.session.auth.password -v VALUE``.
_NAME = re.compile(rf"^(?:--?)?[\w.-]*{CREDENTIAL}[\w-]*$", re.IGNORECASE)


def _quoted_mask(match: re.Match[str]) -> str:
    value = match.group("password")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('prefix')}{quote}{MASK}{quote}"


def mask_text(text: str) -> str:
    """Return ``text`` with URL passwords and credential values masked."""
    text = _URL_CREDENTIALS.sub(
        lambda m: f"{m.group('prefix')}{MASK}@", text)
    return _KEY_VALUE.sub(_quoted_mask, text)


def mask_value(value: Any) -> Any:
    """Mask credentials in a value: a string, or a list or dict of them."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and _CREDENTIAL_KEY.search(key)
            else mask_value(item)
            for key, item in value.items()
        }
    return value


def mask_command_line(arguments: list[str]) -> list[str]:
    """Mask credentials in a command line, ``--password VALUE`` included."""
    masked = []
    pending = False  # a credential was named: its value comes next
    for argument in arguments:
        if pending and not argument.startswith("-"):
            masked.append(MASK)
            pending = False
            continue
        masked.append(mask_text(argument))
        if _NAME.match(argument):
            pending = True
    return masked


# -- application objects ----------------------------------------------------


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


def stored_attribute(owner: Any, name: str, default: Any = None) -> Any:
    """Return ``owner.name`` as stored in its ``__dict__``, else ``default``.

    No property, ``__getattr__`` or ``__getattribute__`` of the owner's
    class runs (an application subclass may define them).
    """
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except Exception:  # no __dict__ (slots), or an odd descriptor
        return default
    if type(namespace) is not dict:
        return default
    return namespace.get(name, default)


_SIZED = (set, frozenset, list, tuple, dict, collections.deque)


def stored_length(value: Any) -> int | None:
    """Return ``len(value)`` of a built-in container, else None."""
    return len(value) if type(value) in _SIZED else None
