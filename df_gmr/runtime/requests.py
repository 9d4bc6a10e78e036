"""The oslo.context request each greenlet serves, read in one pass.

oslo.context keeps the current context in ``_request_store``, a
``threading.local`` that eventlet's monkey patching makes green: one
slot per greenlet, written only by that greenlet while it runs
(``RequestContext(...)`` stores itself unless ``overwrite=False``).  A
stored context is never removed: it stays until the greenlet stores
another one or dies.  So a request id is reported only where the slot
is the greenlet's own *and* the greenlet is one that serves requests:

* never for a main greenlet: a service's main greenlet makes contexts
  at start-up (an admin context, a service context) and then runs the
  launcher for the rest of its life; every forked worker inherits that
  leftover with the parent's main greenlet;
* never for a hub greenlet: it runs eventlet's loop, never a request;
* never for a finished greenlet: it serves nothing any more;
* for every other live greenlet (a greenthread spawned per request by
  eventlet.wsgi, an RPC executor or a pool), the context it stored
  itself while it ran: the request it serves, or the last one it served
  (a periodic task keeps its last run's context while it sleeps), which
  no reading can tell apart: the report says "last request".

Native threads are not read here: a threading service's store is a
native ``threading.local``, whose per-thread slots Python does not let
another thread read.
"""

from __future__ import annotations

import sys
from typing import Any

from df_gmr import greenlets
from df_gmr import naming


def request_ids() -> dict[int, str]:
    """Map greenlet ids to the oslo.context request id they serve."""
    context_module = sys.modules.get("oslo_context.context")
    store = getattr(context_module, "_request_store", None)
    if store is None:
        return {}
    try:
        greens = object.__getattribute__(store, "_local__greens")
    except AttributeError:
        return {}  # a native threading.local: no per-greenlet storage
    hub_greenlets = {id(getattr(hub, "greenlet", None))
                     for hub, _ in greenlets.hubs()}
    found = {}
    # The main thread adds contexts while this runs: copy the underlying
    # dict of weak references with snapshot(), never iterate it live.
    for reference, values in greenlets.snapshot(greens.data.items):
        green = reference()
        if green is None or id(green) in hub_greenlets or \
                not serves_requests(green):
            continue
        context = values.get("context") if type(values) is dict else None
        request_id = naming.stored_attribute(context, "request_id")
        if type(request_id) is str and request_id:
            found[id(green)] = request_id
    return found


def serves_requests(green: Any) -> bool:
    """Say whether a greenlet may serve a request: not main, not finished.

    (Hub greenlets, which never serve one either, are told by their hub.)
    """
    try:
        return green.parent is not None and not green.dead
    except Exception:
        return False
