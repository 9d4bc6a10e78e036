"""Mask credentials inside configuration values.

Options marked ``secret=True`` are masked whole by the configuration
section.  This module catches what hides in ordinary options: the password
of a URL (``mysql+pymysql://nova:PASSWORD@db/nova``,
``rabbit://user:PASSWORD@host:5672/``, several hosts in one URL), and
``password=...``-style pairs inside connection strings.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@ -- the password may contain anything but '@'
# followed by a host; several comma-separated credentials are each masked.
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>(?:[a-zA-Z][a-zA-Z0-9+.-]*://|,)[^:/@,\s]*:)"
    r"(?P<password>[^@\s/]+?)(?=@)"
)
_KEY_VALUE = re.compile(
    r"(?P<prefix>\b(?:password|passwd|pwd|secret|token|auth_key)"
    r"\s*[=:]\s*)(?P<password>[^\s&;,]+)",
    re.IGNORECASE,
)


def mask_text(text: str) -> str:
    """Return ``text`` with URL passwords and ``password=`` values masked."""
    text = _URL_CREDENTIALS.sub(lambda m: m.group("prefix") + MASK, text)
    return _KEY_VALUE.sub(lambda m: m.group("prefix") + MASK, text)


def mask_value(value: Any) -> Any:
    """Mask credentials in a value: a string, or a list or dict of them."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    return value
