"""Mask credentials inside configuration values and command lines.

Options marked ``secret=True`` are masked whole by the configuration
section.  This module catches what hides in ordinary values: the password
of a URL (``mysql+pymysql://nova:PASSWORD@db/nova``, passwords holding
``/`` or ``@``, several hosts in one ``rabbit://`` URL), ``password=...``
style pairs (quoted or not, ``admin_password``, ``--password x``), and
dict entries whose key names a credential, ``"password": "..."`` in JSON.
(It imports nothing: it runs in the reporting thread, where a first
import would take the import lock.)
"""

from __future__ import annotations

import re
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
