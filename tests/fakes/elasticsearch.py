"""A fake Elasticsearch / OpenSearch `_bulk` endpoint that checks requests like the real one.

What it enforces, as Elasticsearch 8 does:
- `POST /_bulk` (and `/{index}/_bulk`) with `Content-Type: application/x-ndjson` (406 otherwise)
  and a body that ends with a newline (400 illegal_argument_exception "The bulk request must be
  terminated by a newline [\\n]");
- credentials when configured: basic auth or `Authorization: ApiKey <key>` (401
  security_exception with a WWW-Authenticate header);
- a body over `max_content_length` gets 413;
- action lines are JSON objects with exactly one of index/create/update/delete (a bad action
  line fails the whole request with 400, as ES does); a source that is not a JSON object gets a
  per-item 400 mapper_parsing_exception.

Documents are stored by index and `_id`, so an item sent twice overwrites (`_version` grows).
Failure switches: `fail_next` (whole requests: 429 with Retry-After, 500, ...), `fail_items`
(per-item errors chosen by a predicate, optionally only the first N times), `stop`/`start` on
the same port (connections refused meanwhile), and `on_bulk` called at each request.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web

from tests.fakes.serving import listen

Doc = dict[str, Any]
ItemPredicate = Callable[[str, str, Doc], bool]


@dataclass
class ItemRule:
    """Answer items matching `predicate` with `status` (`times` None: always)."""

    predicate: ItemPredicate
    status: int
    error_type: str
    reason: str
    times: int | None = None
    hits: int = 0


@dataclass
class BulkRequest:
    """One `_bulk` request as received."""

    size: int
    items: int
    headers: dict[str, str]
    status: int = 200
    item_ids: list[str] = field(default_factory=list)


class FakeElasticsearch:
    """`async with FakeElasticsearch() as es:` — `es.url` is the base URL for `hosts`."""

    def __init__(self, *, username: str = "", password: str = "", api_key: str = "",
                 max_content_length: int = 100 * 1024 * 1024, port: int = 0) -> None:
        self.username, self.password, self.api_key = username, password, api_key
        self.max_content_length = max_content_length
        self.port = port
        self.docs: dict[str, dict[str, Doc]] = {}
        """index -> _id -> the stored document (the latest written)."""
        self.versions: dict[tuple[str, str], int] = {}
        """(index, _id) -> how many times it was written."""
        self.requests: list[BulkRequest] = []
        self.on_bulk: Callable[[BulkRequest], None] | None = None
        self._fail_next: list[tuple[int, dict[str, str], bytes]] = []
        self._item_rules: list[ItemRule] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.port}"

    # ---- switches -----------------------------------------------------------------------
    def fail_next(self, status: int, *, count: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `count` bulk requests with `status` (before reading items)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = orjson.dumps({"error": {"type": "es_rejected_execution_exception" if status == 429
                                       else "fake_failure", "reason": "switched on"},
                             "status": status})
        self._fail_next.extend([(status, headers, body)] * count)

    def fail_items(self, predicate: ItemPredicate, *, status: int, error_type: str,
                   reason: str, times: int | None = None) -> ItemRule:
        """Per-item failures for items where `predicate(index, _id, doc)` holds."""
        rule = ItemRule(predicate, status, error_type, reason, times)
        self._item_rules.append(rule)
        return rule

    def all_docs(self) -> dict[tuple[str, str], Doc]:
        """(index, _id) -> document, over every index."""
        return {(i, d): doc for i, docs in self.docs.items() for d, doc in docs.items()}

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (on the same port as before after a `stop`)."""
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_post("/{index}/_bulk", self._bulk)
        app.router.add_get("/", self._info)
        self._runner, self.port = await listen(app, self.port, access_log=None)

    async def stop(self) -> None:
        """Stop listening: clients get connection refused until `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ---- handlers -----------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"version": {"number": "8.15.0"}, "tagline": "fake"})

    def _authorized(self, header: str) -> bool:
        if self.api_key and header == f"ApiKey {self.api_key}":
            return True
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return header == f"Basic {token}"
        return not self.api_key

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = BulkRequest(size=len(body), items=0, headers=dict(request.headers))
        self.requests.append(record)
        if self.on_bulk is not None:
            self.on_bulk(record)
        response = self._check(request, body)
        if response is None and self._fail_next:
            status, headers, payload = self._fail_next.pop(0)
            response = web.Response(status=status, body=payload, headers=headers,
                                    content_type="application/json")
        if response is None:
            response = self._index(body, request.match_info.get("index"), record)
        record.status = response.status
        return response

    def _check(self, request: web.Request, body: bytes) -> web.Response | None:
        if not self._authorized(request.headers.get("Authorization", "")):
            return _error(401, "security_exception", "missing authentication credentials",
                          headers={"WWW-Authenticate": 'Basic realm="security", ApiKey'})
        if len(body) > self.max_content_length:
            return web.Response(status=413)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/x-ndjson":
            return _error(406, "media_type_header_exception",
                          f"Content-Type header [{content_type}] is not supported")
        if not body.endswith(b"\n"):
            return _error(400, "illegal_argument_exception",
                          "The bulk request must be terminated by a newline [\\n]")
        return None

    def _index(self, body: bytes, default_index: str | None, record: BulkRequest
               ) -> web.Response:
        lines = body.split(b"\n")[:-1]
        items: list[dict[str, Any]] = []
        errors = False
        i = 0
        while i < len(lines):
            try:
                action = orjson.loads(lines[i])
            except orjson.JSONDecodeError:
                return _error(400, "x_content_parse_exception", f"malformed action line {i}")
            if not isinstance(action, dict) or len(action) != 1:
                return _error(400, "illegal_argument_exception", "Malformed action/metadata")
            op, meta = next(iter(action.items()))
            if op not in ("index", "create") or i + 1 >= len(lines):
                return _error(400, "illegal_argument_exception", f"unsupported action [{op}]")
            index = meta.get("_index") or default_index
            doc_id = str(meta.get("_id") or f"auto-{next(self._ids)}")
            item = self._item(op, index, doc_id, lines[i + 1])
            errors = errors or "error" in item
            items.append({op: item})
            record.item_ids.append(doc_id)
            i += 2
        record.items = len(items)
        return web.json_response({"took": 1, "errors": errors, "items": items})

    def _item(self, op: str, index: str | None, doc_id: str, source: bytes) -> dict[str, Any]:
        if not index:
            return _item_error(index, doc_id, 400, "action_request_validation_exception",
                               "index is missing")
        try:
            doc = orjson.loads(source)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            return _item_error(index, doc_id, 400, "mapper_parsing_exception",
                               "failed to parse")
        for rule in self._item_rules:
            if (rule.times is None or rule.hits < rule.times) and rule.predicate(
                    index, doc_id, doc):
                rule.hits += 1
                return _item_error(index, doc_id, rule.status, rule.error_type, rule.reason)
        key = (index, doc_id)
        if op == "create" and key in self.versions:
            return _item_error(index, doc_id, 409, "version_conflict_engine_exception",
                               "document already exists")
        version = self.versions.get(key, 0) + 1
        self.versions[key] = version
        self.docs.setdefault(index, {})[doc_id] = doc
        return {"_index": index, "_id": doc_id, "_version": version,
                "result": "created" if version == 1 else "updated",
                "status": 201 if version == 1 else 200}


def _error(status: int, kind: str, reason: str, *, headers: dict[str, str] | None = None
           ) -> web.Response:
    body = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                      "reason": reason}, "status": status}
    return web.json_response(body, status=status, headers=headers)


def _item_error(index: str | None, doc_id: str, status: int, kind: str, reason: str
                ) -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "status": status,
            "error": {"type": kind, "reason": reason}}
