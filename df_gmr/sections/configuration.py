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
(``confread.secret_values`` gives them).  An error message of a secret
option is reduced to its type: it could quote the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from df_gmr import confread
from df_gmr import redact
from df_gmr.plain import plain_data
from df_gmr.sections import Section
from df_gmr.sections import not_available

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

DEFAULT_GROUP = "DEFAULT"


def _mask_urls(conf: Any) -> bool:
    try:
        return bool(conf.df_gmr.mask_url_credentials)
    except Exception:
        return True


def _read(conf: Any, group: str | None, opt: Any, mask_urls: bool
          ) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": opt.dest}
    named = redact.is_credential_name(opt.dest)
    try:
        value = confread.value(conf, group, opt)
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


def collect(context: ReportContext) -> dict[str, Any]:
    """Return every group's options with their (masked) values."""
    conf = confread.reported_conf(context.conf)
    if conf is None:
        return not_available(
            "oslo.config is not loaded and no conf was given", groups={})
    mask_urls = _mask_urls(conf)
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in confread.group_names(conf):
        entries = [
            _read(conf, group, opt, mask_urls)
            for opt in confread.options(conf, group)
        ]
        if entries:
            entries.sort(key=lambda entry: entry["name"])
            groups[group or DEFAULT_GROUP] = entries
    return {"available": True, "groups": groups}


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render ``group:`` then ``  name = value`` lines."""
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
