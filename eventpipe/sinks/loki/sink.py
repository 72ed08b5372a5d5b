"""The `loki` receiver: batched pushes to Grafana Loki's `/loki/api/v1/push` (JSON, gzip).

Per event (`encode`, in `encode.py`): a `LokiEntry` of stream labels, a deterministic timestamp
and the line. Per batch (`send`): the batch is cut into requests of at most `maxRequestBytes`
(`request.py`) sent one after the other; `send` returns once every request succeeded. The
answers:

- 2xx: delivered.
- 429, 5xx, connection errors (shared `eventpipe.sinks.http` rules, Retry-After honoured):
  when the first request fails the whole batch is retried; when a later one fails, the items of
  that request and of the ones not sent yet are returned as retriable `ItemFailure`s, so the
  driver retries only them.
- 400 / 413 for a request of several entries: Loki stores the valid entries of a push and
  rejects the others ("entry too far behind", "line too long", bad labels), naming at most ten.
  The request's items are reported with a `GroupRejectedError` (413: `TooLargeError`), so the
  driver re-sends them in halves until the rejected entries stand alone; re-sent entries Loki
  already took are exact duplicates it drops (the timestamps are the event's, not "now"). A
  lone rejected entry is a permanent failure carrying Loki's message: that event is
  dead-lettered, the rest are delivered.
- other 4xx: permanent for the request's items, as the shared rules say.

With `restampBehind` (`restamp.py`) an entry too far behind its stream's newest is stamped
with the time eventpipe stored the event, and a lone entry Loki refuses as "entry too far
behind" is re-sent once stamped now instead of being dead-lettered. A re-stamped entry carries
the event's time as structured metadata; under `structuredMetadata: auto` a 400 saying the
server does not take structured metadata turns it off for this receiver (logged once) and the
same request is re-sent without it, so no entry is dead-lettered for that.

Protobuf + snappy (Loki's other push format) is not used: no maintained Python package ships
Loki's push.proto, and gzip JSON is what Loki accepts from every client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from yarl import URL

from eventpipe.delivery.contract import (
    GroupRejectedError,
    ItemFailure,
    RetriableSinkError,
    TooLargeError,
)
from eventpipe.sinks.http import ReceiverSession, basic_auth, bearer_auth, request, status_error
from eventpipe.sinks.loki.config import LokiSinkConfig, push_url
from eventpipe.sinks.loki.encode import EntryEncoder, LokiEntry
from eventpipe.sinks.loki.request import build_body, gzip_body, plan_chunks
from eventpipe.sinks.loki.restamp import TOO_FAR_BEHIND, Restamper, refuses_metadata
from eventpipe.spool.rows import StoredRow

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge

    from eventpipe.metrics import Metrics

log = logging.getLogger(__name__)

_SPLIT_STATUS = frozenset({400, 413})
_TOKEN_TTL = 60.0  # re-read bearerTokenFile this often (kubelet rotates projected tokens)


class LokiSink:
    """Pushes batches of events to one Loki (or a Loki-compatible gateway)."""

    def __init__(self, *, name: str, config: LokiSinkConfig, cluster_name: str = "") -> None:
        self.name = name
        config.label_names(cluster=bool(cluster_name))  # the cluster label counts too
        self._config = config
        url = URL(push_url(config.url))
        user, password = config.username, config.password
        if url.user is not None and not user:
            # Credentials in the URL would end up in error messages: move them to a header.
            user, password = url.user, url.password or ""
        self._url = str(url.with_user(None))
        self._entries = EntryEncoder(
            name=name, stream_labels=config.stream_labels,
            templates=config.templated_labels(cluster=bool(cluster_name)),
            layout=config.layout, cluster_name=cluster_name,
            max_entry_bytes=config.max_request_bytes)
        headers = dict(config.headers)
        headers["Content-Type"] = "application/json"
        if config.compress:
            headers["Content-Encoding"] = "gzip"
        if config.tenant_id:
            headers["X-Scope-OrgID"] = config.tenant_id
        if user:
            headers["Authorization"] = basic_auth(user, password)
        elif config.bearer_token:
            headers["Authorization"] = bearer_auth(config.bearer_token)
        self._token: tuple[float, str] | None = None
        self._http = ReceiverSession(timeout=config.timeout, tls=config.tls,
                                     headers=headers)
        self.requests = 0
        """Push requests made (the bench reports it)."""
        self._metadata = config.structured_metadata != "off"
        """Whether bodies carry entries' structured metadata (off once refused, `auto`)."""
        window = config.restamp_behind
        self._restamper = Restamper(window, metadata=self._metadata) if window > 0 else None
        self._restamped_metric: Counter | None = None
        self._metadata_metric: Gauge | None = None

    @property
    def needs_event(self) -> bool:
        """Always: labels and the timestamp are read from the parsed event."""
        return True

    def encode(self, event: dict[str, object] | None, body: bytes) -> LokiEntry:
        """Stream labels, timestamp and line of one event (see `encode.py`)."""
        assert event is not None, "needs_event: the driver passes the parsed event"
        return self._entries.encode(event, body)

    def encode_row(self, row: StoredRow, event: dict[str, object] | None) -> LokiEntry:
        """`encode`, then kept inside Loki's window by the store time when `restampBehind`
        is set."""
        entry = self.encode(event, row.body)
        if self._restamper is None:
            return entry
        before = self._restamper.restamped
        entry = self._restamper.place(entry, row.observed_at)
        self._count(self._restamper.restamped - before)
        return entry

    def bind_metrics(self, metrics: Metrics) -> None:
        """Count re-stamped entries in `eventpipe_sink_restamped_total`; say whether their
        structured metadata is sent in `eventpipe_sink_loki_structured_metadata`."""
        self._restamped_metric = metrics.sink_restamped.labels(self.name)
        self._metadata_metric = metrics.sink_loki_metadata.labels(self.name)
        self._metadata_metric.set(1 if self._metadata else 0)

    def _count(self, restamped: int) -> None:
        if restamped and self._restamped_metric is not None:
            self._restamped_metric.inc(restamped)

    async def start(self) -> None:
        """Open the HTTP session (idempotent)."""
        self._http.get()

    async def close(self) -> None:
        """Close the session (idempotent)."""
        await self._http.close()

    async def send(self, batch: list[LokiEntry]) -> Sequence[ItemFailure]:
        """Push the batch; see the module doc for what each answer becomes."""
        chunks = plan_chunks(batch, self._config.max_request_bytes)
        failures: list[ItemFailure] = []
        for number, chunk in enumerate(chunks):
            try:
                failures.extend(await self._push(batch, chunk))
            except RetriableSinkError as exc:
                if number == 0:
                    raise  # nothing delivered: the whole batch is retried
                failures.extend(ItemFailure(i, exc) for rest in chunks[number:] for i in rest)
                break
        return failures

    async def _push(self, entries: Sequence[LokiEntry], positions: list[int], *,
                    restamped: bool = False) -> list[ItemFailure]:
        with_metadata = self._metadata
        body = build_body(entries, positions, metadata=with_metadata)
        data = await gzip_body(body) if self._config.compress else body
        self.requests += 1
        status, answer, headers = await request(self._http.get(), "POST", self._url, data=data,
                                                headers=self._auth())
        error = status_error(status, answer, headers, what="loki push: ")
        if error is None:
            return []
        if error.retriable:
            raise error
        if status == 400 and with_metadata and self._metadata_refused(answer):
            return await self._push(entries, positions, restamped=restamped)
        if (status == 400 and len(positions) == 1 and self._restamper is not None
                and TOO_FAR_BEHIND in answer and not restamped):
            entry = self._restamper.stamped_now(entries[positions[0]])
            self._count(1)
            again = await self._push([entry], [0], restamped=True)
            return [ItemFailure(positions[0], failure.error) for failure in again]
        if status in _SPLIT_STATUS and len(positions) > 1:
            group = (TooLargeError if status == 413 else GroupRejectedError)(str(error))
            return [ItemFailure(i, group) for i in positions]
        return [ItemFailure(i, error) for i in positions]

    def _metadata_refused(self, answer: bytes) -> bool:
        """`structuredMetadata: auto` and the server does not take it: stop sending it (a
        request built before another one found out is re-sent too)."""
        if self._config.structured_metadata != "auto" or not refuses_metadata(answer):
            return False
        if not self._metadata:
            return True
        self._metadata = False
        if self._restamper is not None:
            self._restamper.metadata = False
        if self._metadata_metric is not None:
            self._metadata_metric.set(0)
        log.warning("loki refuses structured metadata: re-stamped entries are sent without "
                    "it from now on (the event's time stays in the line)",
                    extra={"receiver": self.name})
        return True

    def _auth(self) -> dict[str, str] | None:
        path = self._config.bearer_token_file
        if not path:
            return None
        now = time.monotonic()
        if self._token is None or now - self._token[0] > _TOKEN_TTL:
            try:
                with open(path, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                # The projected volume may not be there yet: retry, never dead-letter for it.
                raise RetriableSinkError(f"loki bearerTokenFile: {exc.strerror}") from exc
            self._token = (now, token)
        return {"Authorization": bearer_auth(self._token[1])}


def build_sink(config: LokiSinkConfig, *, name: str, cluster_name: str) -> LokiSink:
    """The registry's factory: a `LokiSink` from the `loki:` model."""
    return LokiSink(name=name, config=config, cluster_name=cluster_name)
