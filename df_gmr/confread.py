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
    """Return an option's value as the service reads it.

    Without oslo.config's one-time deprecation warnings: the first read
    of an option deprecated for removal, or set under a deprecated name,
    logs a WARNING in the service's log, once per process.  A report
    must not write it (a worker that never read the option logged it at
    the report), nor use it up: the warnings' "already told" marks are
    set for the read and taken back after it, and the value oslo.config
    caches at a first read is dropped again, so the service's own first
    read still logs it.  (oslo.config's private state, each part only
    where it is as expected.)
    """
    # conf[name], not getattr(): an option named like a ConfigOpts method
    # (keys, get, items) would read the method.
    owner = conf if group is None else conf[group]
    flagged = getattr(opt, "deprecated_for_removal", False) is True and \
        getattr(opt, "_logged_deprecation", None) is False
    told = getattr(getattr(conf, "_namespace", None),
                   "_emitted_deprecations", None)
    added: set[tuple[str, str]] = set()
    if isinstance(told, set):
        added = _deprecated_names(opt, group) - told
        told.update(added)
    cache = getattr(conf, "_ConfigOpts__cache", None)
    key = (group, opt.dest)
    # Only a deprecated option's first read warns: only its value is
    # dropped again (any other stays cached, as the service's read would).
    fresh = (flagged or bool(added)) and isinstance(cache, dict) and \
        key not in cache
    if flagged:
        opt._logged_deprecation = True
    try:
        return owner[opt.dest]
    finally:
        if flagged:
            opt._logged_deprecation = False
        if isinstance(told, set):
            told.difference_update(added)
        if fresh and isinstance(cache, dict):
            cache.pop(key, None)


def _deprecated_names(opt: Any, group: str | None
                      ) -> set[tuple[str, str]]:
    """Return the (section, name) pairs oslo.config warns about when an
    option's value is found under one of its deprecated names."""
    names: set[tuple[str, str]] = set()
    for deprecated in getattr(opt, "deprecated_opts", None) or ():
        name = getattr(deprecated, "name", None)
        section = getattr(deprecated, "group", None)
        if not name and not section:
            continue
        section = section or group or "DEFAULT"
        name = name or opt.dest
        # As the files spell the section, and as oslo.config normalises it.
        names.add((section, name))
        names.add((section if section == "DEFAULT" else section.lower(),
                   name))
    return names


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
