"""How Go template expressions see an Event that is a plain JSON dict.

resmo renders templates against its Go struct (`EnhancedEvent`), so its users write Go field
names (`.InvolvedObject.Name`) where we hold JSON names (`involvedObject.name`). A field lookup
tries, in order: the name as written (so `.involvedObject` and label keys like `.Labels.app`
work), its JSON spelling (`UID` -> `uid`, `APIVersion` -> `apiVersion`), the embedded ObjectMeta
(`.Name` -> `metadata.name`), the events.k8s.io/v1 twin (`.InvolvedObject` -> `regarding`,
`.Message` -> `note`, and back), then resmo's two methods. The order is fixed when the template
is compiled, so a lookup at render time is a few `dict.get` calls.

Values are only ever dict keys, list items and JSON scalars: nothing here touches a Python
attribute, which is what keeps templates sandboxed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from eventpipe.layout.errors import RenderError

Getter = Callable[[object], object]

_ABSENT = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_GO_ZERO_ISO = "0001-01-01T00:00:00.000Z"
_GO_ZERO_MS = -62135596800000

_META_FIELDS = (
    "name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
    "labels", "annotations", "generateName", "selfLink", "ownerReferences", "finalizers",
    "managedFields", "generation", "deletionGracePeriodSeconds",
)  # fmt: skip
_TWINS = {
    "involvedObject": "regarding", "message": "note", "source": "deprecatedSource",
    "count": "deprecatedCount", "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
}  # fmt: skip
_FALLBACKS: MappingProxyType[str, tuple[tuple[str, ...], ...]] = MappingProxyType(
    {m: (("metadata", m),) for m in _META_FIELDS}
    | {core: ((v1,),) for core, v1 in _TWINS.items()}
    | {v1: ((core,),) for core, v1 in _TWINS.items()}
    # Go's Event.ReportingController is serialised as "reportingComponent".
    | {"reportingController": (("reportingComponent",),)}
)
# resmo: FirstTimestamp, else EventTime. deprecatedFirstTimestamp is events.k8s.io's name of
# FirstTimestamp, so it comes before eventTime: an Event renders the same through either API.
# Null-timestamp fallbacks come after those.
_TIMESTAMP_PATHS = (
    ("firstTimestamp",), ("deprecatedFirstTimestamp",), ("eventTime",),
    ("series", "lastObservedTime"), ("lastTimestamp",), ("deprecatedLastTimestamp",),
    ("metadata", "creationTimestamp"),
)  # fmt: skip


def json_name(go_name: str) -> str:
    """Go exported name -> JSON name: lower-case the leading capital run (`APIVersion`)."""
    run = 0
    while run < len(go_name) and go_name[run].isupper():
        run += 1
    if run == 0:
        return go_name
    if run == len(go_name) or run == 1:
        return go_name[:run].lower() + go_name[run:]
    return go_name[: run - 1].lower() + go_name[run - 1 :]


def event_time(event: dict[str, object]) -> tuple[str, datetime] | None:
    """The event's time as resmo's GetTimestamp* methods pick it (text and parsed)."""
    for path in _TIMESTAMP_PATHS:
        value: object = event
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue  # Go would not have decoded the event; try the next candidate
            return value, parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def timestamp_iso8601(event: dict[str, object]) -> str:
    """resmo's `.GetTimestampISO8601`: Go layout "2006-01-02T15:04:05.000Z", in UTC."""
    found = event_time(event)
    if found is None:
        return _GO_ZERO_ISO
    text, t = found
    if text[-1] == "Z" and text[10:11] == "T" and text[19:20] in (".", "Z"):
        # Already valid (it parsed) RFC 3339 UTC, as the API server writes it: slicing is 10x
        # cheaper than formatting the datetime, and this runs once per event per sink.
        return f"{text[:19]}.{text[20:-1][:3].ljust(3, '0')}Z"
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def timestamp_ms(event: dict[str, object]) -> int:
    """resmo's `.GetTimestampMs`: milliseconds since the Unix epoch."""
    found = event_time(event)
    return _GO_ZERO_MS if found is None else (found[1] - _EPOCH) // _MS


_METHODS: MappingProxyType[str, Callable[[dict[str, object]], object]] = MappingProxyType(
    {"GetTimestampISO8601": timestamp_iso8601, "GetTimestampMs": timestamp_ms}
)


def field_getter(name: str) -> Getter:
    """Compile the lookup of one `.Name` step; missing gives None (renders as "")."""
    jname = json_name(name)
    slow = _full_lookup(name, jname)

    def get(value: object) -> object:
        # The hot path: a plain dict holding the name as written or its JSON spelling.
        if type(value) is dict:
            found = value.get(name, _ABSENT)
            if found is _ABSENT:
                found = value.get(jname, _ABSENT)
            if found is not _ABSENT:
                return found
        return slow(value)

    return get


def _full_lookup(name: str, jname: str) -> Getter:
    keys = (name, jname)
    fallbacks = _FALLBACKS.get(jname, ())
    method = _METHODS.get(name)

    def get(value: object) -> object:
        if isinstance(value, dict):
            for key in keys:
                found = value.get(key, _ABSENT)
                if found is not _ABSENT:
                    return found
            for path in fallbacks:
                found = value
                for key in path:
                    found = found.get(key, _ABSENT) if isinstance(found, dict) else _ABSENT
                if found is not _ABSENT:
                    return found
            return method(value) if method is not None else None
        if value is None:
            return None
        raise RenderError(f"can't evaluate field {name} in type {go_type(value)}")

    return get


def go_type(value: object) -> str:
    """The Go type name a user would expect in an error message."""
    if value is None:
        return "nil"
    names = {bool: "bool", int: "int", float: "float64", str: "string", dict: "map", list: "slice"}
    return names.get(type(value), type(value).__name__)


def text_of(value: object) -> str:
    """Print a value the way Go's `{{ . }}` (fmt %v) does; None (missing) prints as ""."""
    if type(value) is str:
        return value
    return "" if value is None else _go_v(value)


def _go_v(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        if "involvedObject" in value and "reason" in value:
            return event_summary(value)
        return "map[" + " ".join(f"{_go_v(k)}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_v(item) for item in value) + "]"
    raise RenderError(f"can't print a value of type {type(value).__name__}")


def event_summary(event: dict[str, object]) -> str:
    """`{{ . }}` of an Event: one line a person can read (kube-eventer printed Go's struct
    dump, resmo a map of every field): type, reason, object, message, count, last seen."""
    involved = event.get("involvedObject")
    obj = involved if isinstance(involved, dict) else {}
    where = "/".join(str(part) for part in (obj.get("namespace"), obj.get("name")) if part)
    head = " ".join(str(part) for part in (event.get("type"), event.get("reason"),
                                            obj.get("kind"), where) if part)
    series = event.get("series")
    count = (series.get("count") if isinstance(series, dict) else None) or event.get("count")
    found = event_time(event)
    tail = ", ".join(part for part in (f"x{count}" if count else "",
                                       f"last seen {found[0]}" if found else "") if part)
    note = event.get("message") or event.get("note") or ""
    return f"{head}: {note}" + (f" ({tail})" if tail else "")


def go_float(f: float) -> str:
    """Go's %v for float64 (%g, shortest): exponent form when exp < -4 or exp >= 6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digit_tuple, exp = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)
    point = len(digit_tuple) + exp  # value = 0.<digits> * 10**point
    minus = "-" if sign else ""
    x = point - 1
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return minus + digits + "0" * (point - len(digits))
    return f"{minus}{digits[:point]}.{digits[point:]}"
