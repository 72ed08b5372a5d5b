"""Object shapes the fake API server answers with: Event views, Status bodies, merge patches.

The store keeps one core/v1 object per Event version; events.k8s.io/v1 is a view converted on
the way out, the way kube-apiserver converts between the two from one etcd record
(pkg/apis/events/v1/conversion.go). That conversion copies fields one to one and does not fill
`reportingController` from `source.component`, so neither do we: a watcher that reads the
events.k8s.io view must cope with what a real server sends.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

# core/v1 field -> events.k8s.io/v1 field; every other field has the same name in both.
_CORE_TO_EVENTS: dict[str, str] = {
    "involvedObject": "regarding",
    "message": "note",
    "reportingComponent": "reportingController",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
}
_EVENTS_TO_CORE: dict[str, str] = {v: k for k, v in _CORE_TO_EVENTS.items()}

_REASON_BY_CODE: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def is_events_v1(obj: Obj) -> bool:
    """True when `obj` is written in the events.k8s.io shape (v1 or v1beta1)."""
    return str(obj.get("apiVersion", "")).startswith("events.k8s.io/")


def to_events_v1(core: Obj) -> Obj:
    """The events.k8s.io/v1 view of a core/v1 Event (keys absent in core stay absent)."""
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for key, value in core.items():
        if key in ("kind", "apiVersion"):
            continue
        out[_CORE_TO_EVENTS.get(key, key)] = value
    return out


def to_core(obj: Obj) -> Obj:
    """A core/v1 Event from either shape; core objects come back as a shallow copy."""
    if not is_events_v1(obj):
        out = dict(obj)
        out.setdefault("kind", "Event")
        out["apiVersion"] = "v1"
        return out
    out = {"kind": "Event", "apiVersion": "v1"}
    for key, value in obj.items():
        if key in ("kind", "apiVersion"):
            continue
        out[_EVENTS_TO_CORE.get(key, key)] = value
    return out


def merge_patch(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch on a deep copy of `target` (None deletes a key)."""
    out = copy.deepcopy(target)
    _merge_into(out, patch)
    return out


def _merge_into(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def status(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    details: Obj | None = None,
) -> Obj:
    """A metav1.Status failure body, as kube-apiserver sends with every error response."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASON_BY_CODE.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def too_old(requested: int, oldest: int) -> Obj:
    """The Status for a watch resume point older than the compaction point."""
    return status(410, f"too old resource version: {requested} ({oldest})", reason="Expired")
