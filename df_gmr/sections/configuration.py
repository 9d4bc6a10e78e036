"""Configuration: every oslo.config option of the reported ``conf``.

The ``conf`` given to ``setup_autorun`` is the one reported; the global
``cfg.CONF`` only when none was given.  An option whose value cannot be
read (a bad value in a file) shows its own error while the rest of the
section comes out.

Masked whole: options marked ``secret=True``, and options whose name
names a credential (``admin_password``, ``api_key``, ``fixed_key``: see
``redact.is_credential_name``) unless their value is a boolean or a
number.  Option and group names always show.
Masked inside other values, unless ``[df_gmr] mask_url_credentials`` is
off: URL passwords, ``password=...`` pairs and dict entries named as
credentials (see ``df_gmr.redact``).  The report then masks every value
of a secret option wherever it appears, here too: a value that holds one
through ``$group.opt`` interpolation shows ``***`` in its place
(``secret_values`` gives them).  An error message of a secret option is
reduced to its type: it could quote the value.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import redact
from df_gmr.sections import Section
from df_gmr.sections import plain_data

if TYPE_CHECKING:
    from df_gmr.report import ReportContext

DEFAULT_GROUP = "DEFAULT"


def reported_conf(context: ReportContext) -> Any:
    """Return the conf a report shows: the given one, else ``cfg.CONF``."""
    if context.conf is not None:
        return context.conf
    cfg = sys.modules.get("oslo_config.cfg")
    return getattr(cfg, "CONF", None)


def _mask_urls(conf: Any) -> bool:
    try:
        return bool(conf.df_gmr.mask_url_credentials)
    except Exception:
        return True


def _options(conf: Any, group: str | None) -> list[Any]:
    if group is None:
        registered = conf._opts
    else:
        registered = conf._groups[group]._opts
    return [info["opt"] for info in list(registered.values())]


def _value(conf: Any, group: str | None, opt: Any) -> Any:
    # conf[name], not getattr(): an option named like a ConfigOpts method
    # (keys, get, items) would read the method.
    owner = conf if group is None else conf[group]
    return owner[opt.dest]


def _read(conf: Any, group: str | None, opt: Any, mask_urls: bool
          ) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": opt.dest}
    named = redact.is_credential_name(opt.dest)
    try:
        value = _value(conf, group, opt)
    except Exception as error:
        # An error message may quote the bad value: never for a secret.
        entry["error"] = (type(error).__name__ if opt.secret or named else
                          redact.mask_text(f"{type(error).__name__}: {error}"))
        return entry
    # A flag or a number named like a credential (mask_url_credentials,
    # token_cache_time) is no credential.
    number = isinstance(value, (bool, int, float))
    if value is not None and (opt.secret or (named and not number)):
        entry["value"] = redact.MASK
        entry["masked"] = True
        return entry
    if mask_urls:
        masked = redact.mask_value(value)
        if masked != value:
            entry["masked"] = True
        value = masked
    entry["value"] = plain_data(value)
    return entry


def _group_names(conf: Any) -> list[str | None]:
    names: list[str | None] = [None]
    names.extend(sorted(conf._groups))
    return names


def secret_values(conf: Any) -> list[str]:
    """Return the string values of every ``secret=True`` option of ``conf``.

    In every group, as the options read (interpolated); the strings of
    list and dict values too.  An option that cannot be read is left out.
    """
    found: list[str] = []
    for group in _group_names(conf):
        for opt in _options(conf, group):
            if not getattr(opt, "secret", False):
                continue
            try:
                value = _value(conf, group, opt)
            except Exception:
                continue
            if isinstance(value, dict):
                value = list(value.values())
            if not isinstance(value, (list, tuple)):
                value = [value]
            found.extend(item for item in value if isinstance(item, str))
    return found


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every group's options with their (masked) values."""
    conf = reported_conf(context)
    if conf is None:
        return {"available": False,
                "reason": "oslo.config is not loaded and no conf was given",
                "groups": {}}
    mask_urls = _mask_urls(conf)
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in _group_names(conf):
        entries = [
            _read(conf, group, opt, mask_urls)
            for opt in _options(conf, group)
        ]
        if entries:
            entries.sort(key=lambda entry: entry["name"])
            groups[group or DEFAULT_GROUP] = entries
    return {"available": True, "groups": groups}


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render ``group:`` then ``  name = value`` lines."""
    if not data.get("available", True):
        return [f"not available: {data['reason']}"]
    lines: list[str] = []
    for group, entries in data["groups"].items():
        lines.append(f"{group}:")
        for entry in entries:
            if "error" in entry:
                lines.append(f"  {entry['name']} = <unreadable: "
                             f"{entry['error']}>")
            else:
                lines.append(f"  {entry['name']} = "
                             f"{_text(entry['value'])}")
        lines.append("")
    return lines[:-1] if lines else ["(no options registered)"]


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return str(value)


# mask_patterns=False: this section masks patterns itself, as
# [df_gmr] mask_url_credentials says; the report masks secret values.
SECTION = Section("configuration", "Configuration", collect, format_lines,
                  mask_patterns=False)
