"""The two row shapes that cross the spool boundary.

They are plain tuples, not classes: the watcher builds one per event version and the sink
workers read one per delivered event, so per-event object construction is kept to a tuple.
Index constants name the positions so code stays readable.
"""

from __future__ import annotations

from typing import Final

# What the watcher hands to Spool.append: one Event version, already normalised.
#   (uid, resource_version, namespace, involved_kind, involved_name, reason, event_type,
#    occurrences, event_time, body)
# event_time is the event's last-seen time as epoch seconds (float) or None when the object has
# none; body is the Event object exactly as served, as orjson bytes.
NewRecord = tuple[str, str, str, str, str, str, str, int, float | None, bytes]

# What Spool.read_after / read_range hand to sink workers.
#   (seq, uid, resource_version, observed_at, event_time, namespace, involved_kind,
#    involved_name, reason, event_type, occurrences, count_delta, body)
StoredRow = tuple[int, str, str, float, float | None, str, str, str, str, str, int, int, bytes]

# Positions in NewRecord (Literal types so mypy knows each element's type).
N_UID: Final = 0
N_RV: Final = 1
N_NAMESPACE: Final = 2
N_KIND: Final = 3
N_NAME: Final = 4
N_REASON: Final = 5
N_TYPE: Final = 6
N_OCCURRENCES: Final = 7
N_EVENT_TIME: Final = 8
N_BODY: Final = 9

# Positions in StoredRow.
S_SEQ: Final = 0
S_UID: Final = 1
S_RV: Final = 2
S_OBSERVED_AT: Final = 3
S_EVENT_TIME: Final = 4
S_NAMESPACE: Final = 5
S_KIND: Final = 6
S_NAME: Final = 7
S_REASON: Final = 8
S_TYPE: Final = 9
S_OCCURRENCES: Final = 10
S_COUNT_DELTA: Final = 11
S_BODY: Final = 12
