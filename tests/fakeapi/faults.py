"""What the fake API server records and what it is told to break.

Tests assert on the request log ("relisted once", "resumed from rv X", the timeoutSeconds the
watcher asked for), and script failures the way a real control plane produces them: throttling
and 5xx with a Status body and Retry-After, RBAC 403 per namespace, 410 either as an HTTP status
or inside a 200 watch stream. Everything here is plain state; the server applies it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from time import monotonic as _monotonic
from time import time as _wall

import orjson
from aiohttp import web

from tests.fakeapi.convert import Obj, status

SERVICE_ACCOUNT = "system:serviceaccount:eventpipe:eventpipe"


@dataclass(eq=False)
class RequestRecord:
    """One request as it arrived, plus the status it got."""

    method: str
    path: str
    query: dict[str, str]
    time: float = field(default_factory=_wall)
    """Wall-clock arrival time (time.time())."""
    monotonic: float = field(default_factory=_monotonic)
    status: int | None = None
    """HTTP status sent (200 for a watch even if it later broke); None while in progress."""

    @property
    def is_watch(self) -> bool:
        """True for a WATCH (watch=true/1), False for a LIST or anything else."""
        return self.query.get("watch", "").lower() in ("true", "1")

    @property
    def is_events(self) -> bool:
        """True for a request on an Event collection (either API group)."""
        return self.path.endswith("/events")

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion query parameter, if given."""
        return self.query.get("resourceVersion")

    @property
    def timeout_seconds(self) -> int | None:
        """The timeoutSeconds query parameter as an int, if given."""
        value = self.query.get("timeoutSeconds")
        return None if value is None else int(value)


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: int | None
    only: str | None


def json_response(
    body: Obj, status_code: int, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response the way kube-apiserver sends one."""
    return web.Response(
        body=orjson.dumps(body),
        status=status_code,
        content_type="application/json",
        headers=headers,
    )


@dataclass
class Faults:
    """Scripted misbehaviour; see the methods of FakeApiServer that set it."""

    gone_mode: str = "stream"
    cut_after: int | None = None
    forbidden: set[str] = field(default_factory=set)
    forbid_all_namespaces: bool = False
    failures: deque[_Failure] = field(default_factory=deque)

    def queue_failures(
        self, n: int, status_code: int, retry_after: int | None, only: str | None
    ) -> None:
        """Make the next `n` Event requests (of kind `only`: "list"/"watch"/None=any) fail."""
        if only not in (None, "list", "watch"):
            raise ValueError(f"only must be 'list', 'watch' or None, not {only!r}")
        self.failures.extend(_Failure(status_code, retry_after, only) for _ in range(n))

    def take_failure(self, record: RequestRecord) -> web.Response | None:
        """The scripted failure for this request, consuming it, or None."""
        kind = "watch" if record.is_watch else "list"
        for failure in self.failures:
            if failure.only in (None, kind):
                self.failures.remove(failure)
                return _failure_response(failure)
        return None

    def forbidden_response(
        self, namespace: str | None, verb: str, group: str
    ) -> web.Response | None:
        """403 when RBAC (as scripted) would not let the service account do this."""
        if namespace is None and not self.forbid_all_namespaces:
            return None
        if namespace is not None and namespace not in self.forbidden:
            return None
        where = "at the cluster scope" if namespace is None else f'in the namespace "{namespace}"'
        message = (
            f'events{"." + group if group else ""} is forbidden: User "{SERVICE_ACCOUNT}" '
            f'cannot {verb} resource "events" in API group "{group}" {where}'
        )
        details = {"group": group, "kind": "events"}
        return json_response(status(403, message, details=details), 403)


def _failure_response(failure: _Failure) -> web.Response:
    messages = {
        429: "Too many requests, please try again later.",
        500: "Internal error occurred: fake apiserver was told to fail",
        503: "The server is currently unable to handle the request",
        504: "The server was unable to return a response in the time allotted",
    }
    message = messages.get(failure.status, f"fake apiserver failure {failure.status}")
    headers: dict[str, str] = {}
    details: Obj | None = None
    if failure.retry_after is not None:
        headers["Retry-After"] = str(failure.retry_after)
        details = {"retryAfterSeconds": failure.retry_after}
    body = status(failure.status, message, details=details)
    return json_response(body, failure.status, headers)
