"""The `elasticsearch` and `opensearch` receivers: every event indexed through `_bulk`.

One implementation serves both keys (OpenSearch kept Elasticsearch 7's bulk API). resmo sends
one index request per event and logs failures; here the driver's batch becomes one `_bulk`
request (split when over `maxBulkBytes`), and the answer is read item by item
(eventpipe.sinks.elasticsearch_bulk) so only failed items are retried or dead-lettered.

- `_id` is `<uid>-<resourceVersion>` by default: each version of an Event is its own document
  and a retried item overwrites itself. `useEventID` keeps resmo's meaning, `_id` = uid: each
  new version overwrites the previous one (the document shows the latest count) — within one
  index; with a daily `indexFormat` a long-lived Event has one document per day.
- Index names: eventpipe.sinks.elasticsearch_index (the event's time, not the send time).
- Hosts: each request starts at the next host (round-robin) and moves on to the others on a
  connection error or a 502/503/504, so one dead node costs no delay.
- Whole-request answers: 2xx read per item; 413 splits the request in halves until one item is
  left, which is then dead-lettered; 408/425/429/5xx retriable (Retry-After honoured); 401/403
  retriable with an error log — credentials or privileges an operator fixes, after which the
  waiting events flow with no replay (dead-lettering them would need one); other 4xx permanent.
- Secrets: credentials in host URLs become basic auth and are cut out of the URL, so no error
  message or log holds a password, an API key or an Authorization header.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import orjson
from yarl import URL

from eventpipe.config.tls import TlsConfig, ssl_context
from eventpipe.core.timestamps import last_seen
from eventpipe.sinks.base import ItemFailure, PermanentSinkError, RetriableSinkError, SinkError
from eventpipe.sinks.elasticsearch_bulk import action_line, item_failures, split_by_size
from eventpipe.sinks.elasticsearch_index import IndexNamer
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.http import ReceiverSession, request, status_error

log = logging.getLogger(__name__)

_FAILOVER_STATUS = frozenset({502, 503, 504})
_AUTH_STATUS = frozenset({401, 403})


class ElasticsearchSink:
    """Indexes events into Elasticsearch / OpenSearch with the bulk API."""

    def __init__(self, *, name: str, hosts: Sequence[str], index: str = "",
                 index_format: str = "", use_event_id: bool = False, de_dot: bool = False,
                 layout: object | None = None, doc_type: str = "", username: str = "",
                 password: str = "", api_key: str = "", headers: Mapping[str, str] | None = None,
                 tls: TlsConfig | None = None, max_bulk_bytes: int = 10 * 1024 * 1024,
                 timeout: float = 30.0, cluster_name: str = "", kind: str = "elasticsearch",
                 clock: Callable[[], float] = time.time) -> None:
        if not hosts:
            raise ValueError(f"receivers.{name}.{kind}.hosts: give at least one URL")
        self.name = name
        self._kind = kind
        self._encoder = LineEncoder(name=name, layout=layout, de_dot=de_dot,
                                    cluster_name=cluster_name)
        self._namer = IndexNamer(index=index, index_format=index_format,
                                 where=f"receivers.{name}.{kind}", clock=clock)
        self._use_event_id = use_event_id
        self._doc_type = doc_type
        self._max_bytes = max_bulk_bytes
        self._ssl = ssl_context(tls)
        self._urls: list[str] = []
        auth = ""
        for host in hosts:
            url = URL(host)
            if url.user is not None and not auth:
                auth = _basic(url.user, url.password or "")
            self._urls.append(str(url.with_user(None)).rstrip("/") + "/_bulk")
        if username or password:
            auth = _basic(username, password)
        if api_key:
            auth = f"ApiKey {api_key}"
        self._headers = {**(headers or {}), "Content-Type": "application/x-ndjson"}
        if auth:
            self._headers["Authorization"] = auth
        self._next = 0
        self._auth_failing = False
        self._http = ReceiverSession(timeout=timeout, ssl_context=self._ssl)

    @property
    def needs_event(self) -> bool:
        """Always: the `_id` and the index name come from the parsed event."""
        return True

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """One bulk item: the `index` action line and the document line."""
        if event is None:
            parsed = orjson.loads(body)
            if not isinstance(parsed, dict):
                raise PermanentSinkError(f"receivers.{self.name}: event body is not an object")
            event = parsed
        meta = event.get("metadata")
        uid = meta.get("uid") if isinstance(meta, dict) else None
        if not uid or not isinstance(meta, dict):
            raise PermanentSinkError(f"receivers.{self.name}: event has no metadata.uid")
        doc_id = str(uid) if self._use_event_id else f"{uid}-{meta.get('resourceVersion', '')}"
        when = last_seen(event) if self._namer.needs_event else None
        index = self._namer.name(event, when)
        return (action_line(index, doc_id, self._doc_type)
                + self._encoder.encode(event, body) + b"\n")

    async def start(self) -> None:
        """Open the keep-alive session."""
        self._http.get()

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """One `_bulk` request per `maxBulkBytes` of items; returns the failed items."""
        failures: list[ItemFailure] = []
        ranges = split_by_size(payloads, self._max_bytes)
        for number, (start, end) in enumerate(ranges):
            try:
                failures.extend(await self._bulk(payloads, start, end))
            except SinkError as exc:  # retriable: permanent answers come back as items
                if number == 0:
                    raise
                # Earlier requests went through: retry only this one and the rest.
                failures.extend(ItemFailure(i, exc) for i in range(start, len(payloads)))
                break
        return failures

    async def close(self) -> None:
        """Close the session."""
        await self._http.close()

    async def _bulk(self, payloads: Sequence[bytes], start: int, end: int
                    ) -> list[ItemFailure]:
        status, body, headers = await self._post(b"".join(payloads[start:end]))
        if status == 413:
            if end - start == 1:
                return [ItemFailure(start, PermanentSinkError(
                    f"{self._kind}: document too large (HTTP 413)"))]
            middle = (start + end) // 2
            first = await self._bulk(payloads, start, middle)
            return first + await self._bulk(payloads, middle, end)
        if status in _AUTH_STATUS:
            if not self._auth_failing:
                log.error("authentication or authorization refused; check username, password "
                          "and apiKey — events wait in the spool and are retried", extra={
                              "receiver": self.name, "status": status})
            self._auth_failing = True
            raise RetriableSinkError(f"{self._kind} _bulk: HTTP {status} (credentials or "
                                     "privileges refused)")
        self._auth_failing = False
        error = status_error(status, body, headers, what=f"{self._kind} _bulk: ")
        if error is not None and error.retriable:
            raise error
        if error is not None:  # the content is at fault: these items, not the whole batch
            return [ItemFailure(i, error) for i in range(start, end)]
        return item_failures(body, offset=start, count=end - start)

    async def _post(self, data: bytes) -> tuple[int, bytes, Mapping[str, str]]:
        session = self._http.get()
        count = len(self._urls)
        first = self._next
        self._next = (first + 1) % count
        failure: RetriableSinkError | None = None
        for attempt in range(count):
            url = self._urls[(first + attempt) % count]
            try:
                answer = await request(session, "POST", url, data=data,
                                       headers=self._headers)
            except RetriableSinkError as exc:
                failure = exc
                continue
            if answer[0] in _FAILOVER_STATUS and attempt < count - 1:
                continue
            return answer
        assert failure is not None
        raise failure


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"
