"""One grouper for threads and greenlets: identical ones told once.

Members with the same state, kind, wait kind and stack form a group; a
group stores once what all its members share (the stack, the wait, the
origin) and, per member, only what differs.  100,000 identical waiters
cost one stack and one list of ids.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Container
import itertools
from typing import Any
from typing import cast

from df_gmr import stacks

#: (state, kind, wait kind, stack keys): what makes members one group.
GroupKey = tuple[str, str, str, stacks.StackKey]
#: ``describe(index, member)``: a member's details (see ``build``).
Describe = Callable[[int, Any], "dict[str, Any] | Same | None"]
#: Members of a group whose details are read: a group of 100,000
#: identical waiters is described from its first ones, and lists all ids.
DETAILS_PER_GROUP = 1000
_MISSING = object()


class Same:
    """What a describer returns for a member read and found identical to
    the member it described just before (same wait, same origin, nothing
    else): no dict is made for it.  Most members of a big group are such
    (5,000 greenthreads waiting on one Event)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME"


#: The one ``Same``.
SAME = Same()


def build(gathered: dict[GroupKey, list[Any]],
          describer: Callable[[GroupKey], Describe],
          ident: Callable[[Any], int], origin_key: str = "origin",
          own_past_budget: Container[int] | None = None
          ) -> list[dict[str, Any]]:
    """Turn gathered members into groups, biggest first.

    ``describer(key)`` returns the function that describes the members
    of the group ``key``: ``describe(index, member)`` returns a member's
    details (``id``,
    ``wait`` and optional ``origin_key`` -- where it was spawned or
    started --, ``request_id``, ``waiting_seconds``, ``name``...), SAME
    for a member read and identical to the one it described just before
    (but for its id), or None past the details budget for a member with
    nothing of its own;
    ``ident(member)`` its id.  With ``own_past_budget``, the ids of the
    members that have something of their own, members past
    DETAILS_PER_GROUP are described only if listed there (a group of
    100,000 identical waiters costs no call per member).
    """
    built = []
    stacks.read_ahead(key[3] for key in gathered)
    for key, members in gathered.items():
        if own_past_budget is None or len(members) <= DETAILS_PER_GROUP:
            chosen: Any = enumerate(members)
        elif not own_past_budget:  # no member has anything of its own
            chosen = itertools.islice(enumerate(members), DETAILS_PER_GROUP)
        else:  # iterated, never listed (a tuple per member)
            chosen = itertools.chain(
                itertools.islice(enumerate(members), DETAILS_PER_GROUP),
                ((index, member) for index, member in itertools.islice(
                    enumerate(members), DETAILS_PER_GROUP, None)
                 if ident(member) in own_past_budget))
        describe = describer(key)
        # A member described as SAME is passed on as its id alone.
        detailed = cast("list[dict[str, Any] | int]", [
            ident(member) if found is SAME else found
            for index, member in chosen
            if (found := describe(index, member)) is not None])
        group = factor(key[0], key[1], stacks.describe(key[3]), detailed,
                       list(map(ident, members)), origin_key)
        built.append((key, group))
    built.sort(key=lambda item: (
        -item[1]["count"], item[0][:3],
        [(code.co_filename, line) for code, line in item[0][3]]))
    return [group for _, group in built]


def factor(state: str, kind: str, stack: list[dict[str, Any]],
           members: list[dict[str, Any] | int], ids: list[int],
           origin_key: str = "origin") -> dict[str, Any]:
    """Factor out what all members share; members keep only their own.

    ``members`` are the detailed ones (the first DETAILS_PER_GROUP, and
    any later one with something of its own, marked ``unread``), each a
    dict of its own with ``id`` first (changed here: it keeps only what
    is its own), or, for a member identical to the one before it but for
    its id (SAME), that id alone; ``ids`` lists every member.
    """
    detailed = [m for m in members if isinstance(m, dict)]
    same = len(members) - len(detailed)
    read = [m for m in detailed if "unread" not in m]
    wait = dict((read or detailed)[0]["wait"]) if detailed else \
        {"kind": "?"}
    for member in read[1:]:
        other = member["wait"]
        if wait.items() <= other.items():  # C-level: the usual case
            continue
        for key in list(wait):
            if other.get(key, _MISSING) != wait[key]:
                del wait[key]
        if len(wait) == 1:  # only the kind is common
            break
    first = detailed[0].get(origin_key) if detailed else None
    # Members mostly share one origin object (described once per place):
    # identity first, equality only for another object.
    common_origin = first if all(
        (origin := m.get(origin_key)) is first or origin == first
        for m in detailed) else None
    own_members = []
    wait_keys = wait.keys()
    # Once per member (100,000 and more): the member's dict (made for
    # this group, by its describer) loses what the group shows; its id
    # stays first.  A SAME member has what the one before it has.
    own: dict[str, Any] | None = None
    # Most groups share their wait kind alone (sleepers each with their
    # own due time): a member's own wait is then its wait but the kind, a
    # C-level copy (the member's wait may be shared: never changed).
    kind_only = len(wait) == 1
    for entry in members:
        if not isinstance(entry, dict):
            if own is not None:
                own_members.append({**own, "id": entry})
            continue
        member = entry
        member_wait = member.pop("wait")
        member.pop("unread", None)
        origin = member.pop(origin_key, None)
        if kind_only:
            if len(member_wait) > 1:
                own_wait = member_wait.copy()
                own_wait.pop("kind", None)
                member["wait"] = own_wait
        elif not member_wait.keys() <= wait_keys:
            member["wait"] = {k: v for k, v in member_wait.items()
                              if k not in wait}
        if common_origin is None and origin is not None:
            member[origin_key] = origin
        own = member if len(member) > 1 else None  # more than its id?
        if own is not None:
            own_members.append(member)
    group: dict[str, Any] = {
        "count": len(ids),
        "state": state,
        "kind": kind,
        "wait_kind": wait["kind"],
        "wait": wait,
        origin_key: common_origin,
        "stack": stack,
        "ids": ids,
        "members": own_members,
    }
    if len(read) + same < len(ids):
        group["details_read"] = len(read) + same
    return group


def expand(group: dict[str, Any], origin_key: str = "origin"
           ) -> list[dict[str, Any]]:
    """Return one full dict per member of a group (for JSON readers)."""
    own = {member["id"]: member for member in group["members"]}
    expanded = []
    for ident in group["ids"]:
        member = own.get(ident, {})
        expanded.append({
            **{key: value for key, value in member.items()
               if key not in ("wait", origin_key)},
            "id": ident,
            "kind": group["kind"],
            "state": group["state"],
            "wait": {**group["wait"], **member.get("wait", {})},
            origin_key: member.get(origin_key, group.get(origin_key)),
        })
    return expanded
