"""Structured logging: JSON lines by default (for clusters), or a readable form.

Fields passed with `extra={...}` become JSON keys. Payloads and secrets are never logged, at
any level: eventpipe's own records name events by stream, receiver, seq or uid, never by body,
and the libraries' loggers stay at warning unless `dependencyLogLevel` asks for more. Two are
held at warning whatever is asked: aiosqlite logs the arguments of every statement at debug
(the event bodies being stored), kubernetes-asyncio's REST client every response body (Event
lists, and the objects enrichment looks up, annotations included).
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class PrettyFormatter(logging.Formatter):
    """`time level logger: msg key=value ...` for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = (f"{time.strftime('%H:%M:%S', time.localtime(record.created))} "
                f"{record.levelname:<7} {record.name}: {record.getMessage()}")
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}
PAYLOAD_LOGGERS = ("aiosqlite", "kubernetes_asyncio.client.rest")
"""Libraries that log payloads below warning: never let them below it."""


def setup_logging(level: str = "info", fmt: str = "json", *, dependencies: str = "warn") -> None:
    """Configure logging once at startup (to stderr; stdout may be a sink): eventpipe's loggers
    at `level`, every other library's at `dependencies`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PrettyFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(dependencies.lower(), logging.WARNING))
    logging.getLogger("eventpipe").setLevel(_LEVELS.get(level.lower(), logging.INFO))
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # aiohttp's access log and kubernetes_asyncio's debug output are noise at info.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiokafka logs every refused connection at ERROR during a broker outage; the sink driver
    # already logs each failed send (once per retry) with the receiver name.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
