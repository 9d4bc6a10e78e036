"""Configuration: every oslo.config option of the reported ``conf``.

The ``conf`` given to ``setup_autorun`` is the one reported; the global
``cfg.CONF`` only when none was given.  Options marked ``secret=True`` are
masked whole, credentials inside other values are masked too (see
``df_gmr.redact``), and an option whose value cannot be read (a bad value
in a file) shows its own error while the rest of the section comes out.
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


def _conf(context: ReportContext) -> Any:
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


def _read(conf: Any, group: str | None, opt: Any, mask_urls: bool
          ) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": opt.dest}
    try:
        owner = conf if group is None else getattr(conf, group)
        value = getattr(owner, opt.dest)
    except Exception as error:
        # An error message may quote the bad value: never for a secret.
        entry["error"] = (type(error).__name__ if opt.secret else
                          redact.mask_text(f"{type(error).__name__}: {error}"))
        return entry
    if opt.secret and value is not None:
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
    conf = _conf(context)
    if conf is None:
        return {"available": False,
                "reason": "oslo.config is not loaded and no conf was given",
                "groups": {}}
    mask_urls = _mask_urls(conf)
    groups: dict[str, list[dict[str, Any]]] = {}
    names: list[str | None] = [None]
    names.extend(sorted(conf._groups))
    for group in names:
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


SECTION = Section("configuration", "Configuration", collect, format_lines)
