"""What enrichment adds to an Event, and the marker that says it added something.

Enrichment only adds keys to the involved-object reference (`involvedObject`, or `regarding` in
events.k8s.io/v1); a key the API served is never replaced. The keys (documented in
docs/configuration.md):

- `labels`, `annotations`: the object's own maps (resmo's names, read by route rules);
- `ownerReferences`: the object's `metadata.ownerReferences` as served;
- `owner`: the top controller `{kind, name}`, following `controller: true` references up
  (Pod → ReplicaSet → Deployment, Pod → Job → CronJob); absent when there is no controller;
- `node`: a Pod's `spec.nodeName`;
- `deleted: true`: the object no longer exists (404, or its name now belongs to a new uid); an
  object the metadata caches saw deleted keeps its last labels, owner and node beside it.

The result is an `EnrichedEvent`, a dict subclass: encoders see by its type that the served
bytes no longer tell the whole story and serialise the dict instead (eventpipe.sinks.encoding).
The input dict is never changed (copy-on-write: the top level and the reference are copied).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Event = Mapping[str, Any]
_MAX_CHAIN = 8  # owner chains are 2-3 deep; a cycle in broken data must not loop forever


class EnrichedEvent(dict[str, Any]):
    """An Event dict to which enrichment added at least one key. `section` and
    `added_members` (the added keys as JSON object members, without the braces) let an encoder
    splice them into the served bytes instead of serialising the whole dict
    (eventpipe.sinks.encoding); None when unknown."""

    __slots__ = ("added_members", "section")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section: str | None = None
        self.added_members: bytes | None = None


@dataclass(slots=True)
class ObjectInfo:
    """What the cache keeps about one object (never the whole object)."""

    uid: str
    resource_version: str
    kind: str
    name: str
    namespace: str = ""
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    owner_references: list[Any] | None = None
    node: str | None = None
    deleted: bool = False
    served: bool = True
    """False when the API server does not serve the kind (nothing to look up)."""
    fetched_at: float = 0.0
    added: dict[str, Any] | None = None
    """What `apply` adds for this object, as of `added_generation` (a metadata cache's)."""
    added_members: bytes | None = None
    """`added` as JSON object members (no braces), for splicing into served bytes."""
    added_generation: int = -1

    @property
    def controller(self) -> Mapping[str, Any] | None:
        """The ownerReference with `controller: true`, if any."""
        for ref in self.owner_references or ():
            if isinstance(ref, dict) and ref.get("controller") is True:
                return ref
        return None


def object_info(obj: Mapping[str, Any], *, fetched_at: float) -> ObjectInfo:
    """Keep the parts of a served object that enrichment uses."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    node = spec.get("nodeName") if obj.get("kind") == "Pod" else None
    return ObjectInfo(
        uid=str(meta.get("uid") or ""), resource_version=str(meta.get("resourceVersion") or ""),
        kind=str(obj.get("kind") or ""), name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""), labels=meta.get("labels") or None,
        annotations=meta.get("annotations") or None,
        owner_references=meta.get("ownerReferences") or None,
        node=node if isinstance(node, str) and node else None, fetched_at=fetched_at)


def reference(event: Event) -> tuple[str, Mapping[str, Any]] | None:
    """(key, involved-object reference) of an Event, whichever API served it."""
    for key in ("involvedObject", "regarding"):
        ref = event.get(key)
        if isinstance(ref, dict):
            return key, ref
    return None


def top_owner(info: ObjectInfo, lookup: Callable[[str], ObjectInfo | None]
              ) -> dict[str, str] | None:
    """The topmost controller reachable from `info` through cached owners; as far as the
    cache knows (an owner not cached yet is the top as far as we can tell)."""
    ref = info.controller
    top: dict[str, str] | None = None
    for _ in range(_MAX_CHAIN):
        if ref is None:
            break
        top = {"kind": str(ref.get("kind", "")), "name": str(ref.get("name", ""))}
        owner = lookup(str(ref.get("uid", "")))
        ref = owner.controller if owner is not None else None
    return top


def additions(info: ObjectInfo, lookup: Callable[[str], ObjectInfo | None]) -> dict[str, Any]:
    """What enrichment adds for `info` (before dropping keys the reference already has)."""
    add: dict[str, Any] = {}
    if info.labels:
        add["labels"] = info.labels
    if info.annotations:
        add["annotations"] = info.annotations
    if info.owner_references:
        add["ownerReferences"] = info.owner_references
        owner = top_owner(info, lookup)
        if owner is not None:
            add["owner"] = owner
    if info.node:
        add["node"] = info.node
    if info.deleted:
        add["deleted"] = True
    return add


def cached_additions(info: ObjectInfo, lookup: Callable[[str], ObjectInfo | None],
                     generation: int) -> tuple[dict[str, Any], bytes | None]:
    """`additions` and their JSON members (None when empty), computed once per object and
    `generation` (the metadata store's) and kept on `info`; shared, never mutated."""
    if info.added_generation == generation and info.added is not None:
        return info.added, info.added_members
    add = additions(info, lookup)
    # Held: sliced into bytes of their own size, not orjson's grown buffer (core.jsonbytes).
    members = orjson.dumps(add)[1:-1] if add else None
    info.added, info.added_members, info.added_generation = add, members, generation
    return add, members


def apply(event: dict[str, Any], section: str, ref: Mapping[str, Any], info: ObjectInfo,
          lookup: Callable[[str], ObjectInfo | None], generation: int = -1) -> dict[str, Any]:
    """`event` with `info` added under `section` (only keys the reference lacks); the same
    object when there is nothing to add. With a `generation` (the metadata store's, which
    moves whenever an object that can be an owner changes), the additions are computed once
    per object and generation and shared by its events (never mutated)."""
    if generation >= 0:
        add, members = cached_additions(info, lookup, generation)
    else:
        add, members = additions(info, lookup), None
    if not add:
        return event
    if not ref.keys().isdisjoint(add):
        add = {k: v for k, v in add.items() if k not in ref}  # the API served it: it stands
        members = None
        if not add:
            return event
    out = EnrichedEvent(event)
    out[section] = {**ref, **add}
    out.section, out.added_members = section, members
    return out
