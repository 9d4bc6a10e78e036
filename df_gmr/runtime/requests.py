"""The oslo.context request each greenlet serves, read in one pass."""

from __future__ import annotations

import sys

from df_gmr import greenlets
from df_gmr import naming


def request_ids() -> dict[int, str]:
    """Map greenlet ids to the oslo.context request id bound to them."""
    context_module = sys.modules.get("oslo_context.context")
    store = getattr(context_module, "_request_store", None)
    if store is None:
        return {}
    try:
        greens = object.__getattribute__(store, "_local__greens")
    except AttributeError:
        return {}  # a native threading.local: no per-greenlet storage
    found = {}
    # The main thread adds contexts while this runs: copy the underlying
    # dict of weak references with snapshot(), never iterate it live.
    for reference, values in greenlets.snapshot(greens.data.items):
        green = reference()
        if green is None:
            continue
        context = values.get("context") if type(values) is dict else None
        request_id = naming.stored_attribute(context, "request_id")
        if type(request_id) is str and request_id:
            found[id(green)] = request_id
    return found
