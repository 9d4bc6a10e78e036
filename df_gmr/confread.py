"""Reading an oslo.config ``ConfigOpts``: groups, options, values, secrets.

Shared by the Configuration section (which shows every option) and the
report builder (which masks every value of a secret option wherever it
appears).  Values are read with ``conf[name]``, which runs oslo.config's
own parsing and interpolation: callers do it within a time budget.
"""

from __future__ import annotations

import sys
from typing import Any


def reported_conf(conf: Any) -> Any:
    """Return the conf a report shows: the given one, else ``cfg.CONF``."""
    if conf is not None:
        return conf
    cfg = sys.modules.get("oslo_config.cfg")
    return getattr(cfg, "CONF", None)


def options(conf: Any, group: str | None) -> list[Any]:
    """Return the options registered in ``group`` (None: DEFAULT)."""
    if group is None:
        registered = conf._opts
    else:
        registered = conf._groups[group]._opts
    return [info["opt"] for info in list(registered.values())]


def value(conf: Any, group: str | None, opt: Any) -> Any:
    """Return an option's value as the service reads it."""
    # conf[name], not getattr(): an option named like a ConfigOpts method
    # (keys, get, items) would read the method.
    owner = conf if group is None else conf[group]
    return owner[opt.dest]


def group_names(conf: Any) -> list[str | None]:
    """Return None (DEFAULT) then every group's name, sorted."""
    names: list[str | None] = [None]
    names.extend(sorted(conf._groups))
    return names


def secret_values(conf: Any) -> list[str]:
    """Return the string values of every ``secret=True`` option of ``conf``.

    In every group, as the options read (interpolated); the strings of
    list and dict values too.  An option that cannot be read is left out.
    """
    found: list[str] = []
    for group in group_names(conf):
        for opt in options(conf, group):
            if not getattr(opt, "secret", False):
                continue
            try:
                read = value(conf, group, opt)
            except Exception:
                continue
            if isinstance(read, dict):
                read = list(read.values())
            if not isinstance(read, (list, tuple)):
                read = [read]
            found.extend(item for item in read if isinstance(item, str))
    return found
