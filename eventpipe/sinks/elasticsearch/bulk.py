"""The `_bulk` API's framing and answers, apart from the I/O (eventpipe.sinks.elasticsearch.sink).

One item of a bulk body is two NDJSON lines, the action and the document:

    {"index":{"_index":"kube-events-2026-11-23","_id":"<uid>-<resourceVersion>"}}\n
    {...the event or the rendered layout...}\n

`index` (not `create`) so a repeated item overwrites its document: a retried batch never gets
409 conflicts and never duplicates.

An HTTP 200 is not success: with `"errors": true` each item has its own status. Per item:

    2xx                          delivered
    429, 5xx, 408                retriable: the cluster is busy or a shard is unavailable
    401, 403                     retriable: a security or cluster block (read-only index after
                                 the disk flood stage) an operator clears; the events wait in
                                 the spool, counted, instead of filling the dead letters
    other 4xx (400 mapper_parsing_exception, 404 index_not_found_exception, ...)
                                 permanent: the item is dead-lettered with its error type and
                                 reason (`eventpipe replay` can re-send it after a fix)
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from eventpipe.delivery.contract import (
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)

_RETRIABLE_ITEM = frozenset({401, 403, 408, 429})
_REASON_LIMIT = 300


def action_line(index: str, doc_id: str, doc_type: str = "") -> bytes:
    """The `index` action of one item (with its newline)."""
    meta: dict[str, str] = {"_index": index, "_id": doc_id}
    if doc_type:
        meta["_type"] = doc_type
    return orjson.dumps({"index": meta}) + b"\n"


def split_by_size(payloads: Sequence[bytes], max_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of `payloads` whose joined size stays within `max_bytes`.

    An item larger than `max_bytes` on its own travels alone (the cluster decides: 413).
    """
    ranges: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, payload in enumerate(payloads):
        if i > start and size + len(payload) > max_bytes:
            ranges.append((start, i))
            start, size = i, 0
        size += len(payload)
    if start < len(payloads):
        ranges.append((start, len(payloads)))
    return ranges


def item_failures(body: bytes, *, offset: int, count: int) -> list[ItemFailure]:
    """The failed items of a 2xx bulk answer, at positions `offset + i` of the batch.

    An answer that is not a bulk result for exactly `count` items is a RetriableSinkError: a
    proxy or a broken node answered, and the same request may well succeed on the next try.
    """
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RetriableSinkError("_bulk answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
        raise RetriableSinkError("_bulk answer has no `items`")
    if answer.get("errors") is False:
        return []
    items = answer["items"]
    if len(items) != count:
        raise RetriableSinkError(f"_bulk answer has {len(items)} items for {count} sent")
    failures: list[ItemFailure] = []
    for i, item in enumerate(items):
        error = _item_error(item)
        if error is not None:
            failures.append(ItemFailure(offset + i, error))
    return failures


def _item_error(item: object) -> SinkError | None:
    result = next(iter(item.values()), None) if isinstance(item, dict) else None
    if not isinstance(result, dict):
        return RetriableSinkError("_bulk item without a result")
    status = result.get("status")
    if not isinstance(status, int):
        return RetriableSinkError("_bulk item without a status")
    if 200 <= status < 300:
        return None
    error = result.get("error")
    if isinstance(error, dict):
        kind = str(error.get("type", "error"))
        reason = str(error.get("reason", ""))[:_REASON_LIMIT]
        caused = error.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            reason += f" (caused by {caused.get('type')}: {str(caused['reason'])[:200]})"
    else:
        kind, reason = "error", str(error or "")[:_REASON_LIMIT]
    message = f"_bulk item HTTP {status} {kind}: {reason}"
    if status in _RETRIABLE_ITEM or status >= 500:
        return RetriableSinkError(message)
    return PermanentSinkError(message)
