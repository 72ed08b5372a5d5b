"""A fake Grafana Loki push endpoint that validates pushes the way Loki's distributor/ingester do.

`POST /loki/api/v1/push` with `Content-Type: application/json`, optionally
`Content-Encoding: gzip`. What is checked, and answered like Loki:

- the body parses as `{"streams": [{"stream": {..}, "values": [["<ns>", "<line>"], ...]}]}`
  with timestamps as decimal strings of nanoseconds, and an optional third element, the
  entry's structured metadata, an object whose values are strings (Loki's loghttp entry
  parser; else 400 for the whole push);
- per stream: at least one label, at most `max_labels`, names `[a-zA-Z_][a-zA-Z0-9_]*`, values
  non-empty strings (stricter than Loki, which drops empty values: our sink must not send
  them). A bad stream is rejected whole; the other streams of the push are still stored;
- per entry, in Loki's order: equal to the stream's last stored entry -> duplicate; a line over
  `max_line_bytes` -> "Max entry size ... exceeded"; structured metadata while
  `structured_metadata` is False (Loki's `allow_structured_metadata`) -> Loki's "includes
  structured metadata, but this feature is disallowed"; older than the stream's newest entry minus
  `window` (Loki: max_chunk_age / 2 = 1 h) -> "entry too far behind"; an exact duplicate (same
  timestamp and line) of any stored entry -> silently dropped and counted in `duplicates`;
  else stored. Valid entries are stored even when others of the push fail, as Loki does; the
  answer is then 400 listing the failures (Loki names at most 10).

Switches: `fail_next(n, status, retry_after)`, `reject_lines(predicate)` (matching entries get
400 like any invalid entry), `stop()` / `start()` on the same port (connection refused between).
`streams` maps each label set (sorted tuple of pairs) to its stored (ts, line) list,
`metadata` each stored entry's (labels, ts) to its structured metadata, and
`metadata_received` counts entries that arrived with any; `tenants` records the X-Scope-OrgID
of every push. `python -m tests.fakes.loki --port N` runs it alone
(`GET /stats` gives the counters) for the delivery bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web

from tests.fakes.serving import Changes, listen

Labels = tuple[tuple[str, str], ...]
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MAX_RETURNED_ERRORS = 10


class _Rejected(Exception):
    """The whole push is malformed (Loki answers 400 without storing anything)."""


class FakeLoki:
    """An aiohttp server on 127.0.0.1 standing in for Loki's push API."""

    def __init__(self, *, port: int = 0, window: float = 3600.0,
                 max_line_bytes: int = 256 * 1024, max_labels: int = 15,
                 keep_lines: bool = True, structured_metadata: bool = True) -> None:
        self.port = port
        self.window_ns = int(window * 1e9)
        self.max_line_bytes = max_line_bytes
        self.max_labels = max_labels
        self.keep_lines = keep_lines
        self.structured_metadata = structured_metadata
        """Loki's `allow_structured_metadata` (true by default since 3.0)."""
        self.metadata: dict[tuple[Labels, int], dict[str, str]] = {}
        self.metadata_received = 0
        """False (bench): store hashes of lines, not the lines, to keep memory flat."""
        self.streams: dict[Labels, list[tuple[int, Any]]] = {}
        self._seen: dict[Labels, set[tuple[int, Any]]] = {}
        self._newest: dict[Labels, int] = {}
        self.duplicates = 0
        self.rejected: list[tuple[Labels, int, str, str]] = []
        """(labels, ts, line, reason) of every entry answered 400."""
        self.tenants: list[str | None] = []
        self.authorizations: list[str | None] = []
        self.statuses: list[int] = []
        self.body_sizes: list[int] = []
        """Uncompressed size of every push body."""
        self.gzipped = 0
        self.push_times: list[float] = []
        """time.monotonic() of every push."""
        self._fail: list[tuple[int, int | None, bool]] = []
        self._fail_after = 0
        self._reject: Callable[[str], bool] | None = None
        self._runner: web.AppRunner | None = None
        self.changes = Changes()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The push URL."""
        return f"http://127.0.0.1:{self.port}/loki/api/v1/push"

    async def start(self) -> None:
        """Listen (again) on the same port."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/loki/api/v1/push", self._push)
        app.router.add_get("/stats", self._stats)
        # auto_decompress off: the fake checks the gzip itself, as Loki does.
        self._runner, self.port = await listen(app, self.port, auto_decompress=False)

    async def stop(self) -> None:
        """Stop listening and close open connections: clients get connection refused."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def fail_next(self, n: int, status: int = 500, retry_after: int | None = None, *,
                  after: int = 0, after_store: bool = False) -> None:
        """Answer `n` pushes with `status` (and Retry-After seconds), once `after` more pushes
        went through normally. `after_store`: store the push first (a reply lost after Loki
        took it), else store nothing."""
        self._fail_after = after
        self._fail.extend([(status, retry_after, after_store)] * n)

    def reject_lines(self, predicate: Callable[[str], bool] | None) -> None:
        """Entries whose line matches get rejected (400) like invalid entries; None: stop."""
        self._reject = predicate

    def lines(self) -> list[str]:
        """Every stored line, stream by stream."""
        return [line for entries in self.streams.values() for _, line in entries]

    def entries(self) -> list[tuple[dict[str, str], int, Any]]:
        """(labels, ts, line) of every stored entry."""
        return [(dict(k), ts, line) for k, v in self.streams.items() for ts, line in v]

    @property
    def stored(self) -> int:
        """Entries stored (duplicates and rejections not counted)."""
        return sum(len(v) for v in self.streams.values())

    async def wait_for(self, predicate: Callable[[FakeLoki], bool], *, within: float = 30.0,
                       what: str = "condition") -> None:
        """Wait (woken by each push) until `predicate(self)`; AssertionError after `within`."""
        await self.changes.wait_until(
            lambda: predicate(self), within=within,
            timed_out=lambda: (f"fake Loki: timed out after {within}s waiting for {what} "
                               f"({self.stored} stored, {len(self.statuses)} pushes)"))

    async def _stats(self, _request: web.Request) -> web.Response:
        return web.json_response({"stored": self.stored, "duplicates": self.duplicates,
                                  "pushes": len(self.statuses), "rejected": len(self.rejected),
                                  "streams": len(self.streams)})

    async def _push(self, request: web.Request) -> web.Response:
        try:
            status, text, headers = self._answer(request, await request.read())
        finally:
            self.changes.notify()
        self.statuses.append(status)
        return web.Response(status=status, text=text, headers=headers)

    def _answer(self, request: web.Request, raw: bytes) -> tuple[int, str, dict[str, str]]:
        self.push_times.append(time.monotonic())
        if self._fail and self._fail_after > 0:
            self._fail_after -= 1
        elif self._fail:
            status, retry_after, after_store = self._fail.pop(0)
            if after_store:
                self._answer_valid(request, raw)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, f"injected failure {status}", headers
        return self._answer_valid(request, raw)

    def _answer_valid(self, request: web.Request, raw: bytes
                      ) -> tuple[int, str, dict[str, str]]:
        self.tenants.append(request.headers.get("X-Scope-OrgID"))
        self.authorizations.append(request.headers.get("Authorization"))
        if request.content_type != "application/json":
            return 415, f"unsupported Content-Type {request.content_type!r}", {}
        try:
            if request.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
                self.gzipped += 1
            self.body_sizes.append(len(raw))
            errors = self._store(orjson.loads(raw))
        except (_Rejected, OSError, EOFError, orjson.JSONDecodeError) as exc:
            return 400, f"loghttp.PushRequest: {exc}", {}
        if not errors:
            return 204, "", {}
        return 400, "\n".join(errors[:_MAX_RETURNED_ERRORS]), {}

    def _store(self, body: Any) -> list[str]:
        streams = body.get("streams") if isinstance(body, dict) else None
        if not isinstance(streams, list):
            raise _Rejected("expected an object with a streams array")
        parsed = [(self._labels(s.get("stream")), self._values(s.get("values")))
                  for s in streams if isinstance(s, dict)]
        if len(parsed) != len(streams):
            raise _Rejected("a stream is not an object")
        errors: list[str] = []
        for labels, values in parsed:
            if isinstance(labels, str):
                errors.append(labels)
                continue
            for ts, line, metadata in values:
                if metadata and not self.structured_metadata:
                    # The distributor's validation: its message is the answer, unwrapped.
                    self.rejected.append((labels, ts, line, "structured metadata"))
                    errors.append(f"stream '{_text(labels)}' includes structured metadata, but "
                                  "this feature is disallowed. Please see "
                                  "`limits_config.allow_structured_metadata` or contact your "
                                  "Loki administrator to enable it.")
                    continue
                reason = self._add(labels, ts, line)
                if reason is not None:
                    self.rejected.append((labels, ts, line, reason))
                    errors.append(f"entry with timestamp {ts} ignored, reason: '{reason}' for "
                                  f"stream: {_text(labels)}")
                elif metadata:
                    self.metadata[(labels, ts)] = metadata
        return errors

    def _labels(self, stream: Any) -> Labels | str:
        if not isinstance(stream, dict) or not stream:
            return "error at least one label pair is required per stream"
        if len(stream) > self.max_labels:
            return (f"entry for stream '{stream}' has {len(stream)} label names; limit "
                    f"{self.max_labels}")
        for name, value in stream.items():
            if not _NAME.fullmatch(name) or not isinstance(value, str) or not value:
                return f"error parsing labels '{stream}': invalid label {name}={value!r}"
        return tuple(sorted(stream.items()))

    def _values(self, values: Any) -> list[tuple[int, str, dict[str, str] | None]]:
        if not isinstance(values, list):
            raise _Rejected("values is not an array")
        out: list[tuple[int, str, dict[str, str] | None]] = []
        for value in values:
            if (not isinstance(value, list) or len(value) < 2 or not isinstance(value[0], str)
                    or not value[0].isdigit() or not isinstance(value[1], str)):
                raise _Rejected(f"cannot parse entry {str(value)[:100]}: want [\"<ns>\", line]")
            if len(value) > 3:
                raise _Rejected("error reading entry: array must contains 2 values")
            metadata = value[2] if len(value) == 3 else None
            if metadata is not None:
                if not isinstance(metadata, dict):
                    raise _Rejected("Malformed JSON error: structured metadata is not an object")
                if not all(isinstance(v, str) for v in metadata.values()):
                    raise _Rejected("Value is not a string: structured metadata values must "
                                    "be strings")
                self.metadata_received += 1
            out.append((int(value[0]), value[1], metadata))
        return out

    def _add(self, labels: Labels, ts: int, line: str) -> str | None:
        stored = self.streams.setdefault(labels, [])
        seen = self._seen.setdefault(labels, set())
        key = (ts, line if self.keep_lines else hash(line))
        if stored and stored[-1] == key:
            self.duplicates += 1
            return None
        if len(line.encode()) > self.max_line_bytes:
            return (f"Max entry size '{self.max_line_bytes}' bytes exceeded for stream "
                    f"'{_text(labels)}' while adding an entry with length '{len(line)}' bytes")
        if self._reject is not None and self._reject(line):
            return "rejected by the test"
        newest = self._newest.get(labels)
        if newest is not None and ts < newest - self.window_ns:
            return (f"entry too far behind, entry timestamp is: {ts}, oldest acceptable "
                    f"timestamp is: {newest - self.window_ns}")
        if key in seen:
            self.duplicates += 1
            return None
        seen.add(key)
        stored.append(key)
        self._newest[labels] = max(ts, newest or ts)
        return None


def _text(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


async def _serve(port: int, window: float) -> None:
    async with FakeLoki(port=port, window=window, keep_lines=False) as fake:
        print(f"listening {fake.port}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    """`python -m tests.fakes.loki --port N`: serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--window", type=float, default=3600.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.window))


if __name__ == "__main__":
    main()
