"""A TLS verification failure to any HTTP receiver reads as a certificate problem naming the
host (not "Operation not permitted", OpenSSL's errno told by os.strerror), and never the token
in the URL. A real HTTPS server with a self-signed certificate, each receiver built as `run`
builds it."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from eventpipe.config import load_config_text
from eventpipe.delivery.contract import RetriableSinkError
from eventpipe.sinks.registry import build_sink

TOKEN = "t0ken-d3adbeef"


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate self-signed for `localhost`."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "srv.key", "-out", "srv.crt", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   cwd=tmp_path, check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    return context


@pytest.fixture
async def https_port(self_signed: ssl.SSLContext) -> AsyncIterator[int]:
    """An HTTPS server on 127.0.0.1 with the self-signed certificate."""
    context = self_signed
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def receivers(base: str) -> dict[str, dict[str, Any]]:
    return {
        "webhook": {"endpoint": f"{base}/hook?key={TOKEN}"},
        "bark": {"serverURL": base, "deviceKey": TOKEN},
        "dingtalk": {"webhook": f"{base}/robot/send?access_token={TOKEN}"},
        "wecom": {"webhook": f"{base}/cgi-bin/webhook/send?key={TOKEN}"},
        "feishu": {"webhook": f"{base}/open-apis/bot/v2/hook/{TOKEN}"},
        "slack": {"webhookURL": f"{base}/services/{TOKEN}"},
        "loki": {"url": base},
        "elasticsearch": {"hosts": [base], "index": "events"},
    }


@pytest.mark.parametrize("kind", sorted(receivers("https://x")))
async def test_certificate_failure_names_the_host(https_port: int, kind: str) -> None:
    base = f"https://localhost:{https_port}"
    text = orjson.dumps({"receivers": [{"name": "out", kind: receivers(base)[kind]}],
                         "route": {"match": [{"receiver": "out"}]}}).decode()
    receiver = load_config_text(text, source="config.yaml", environ={}).receivers[0]
    sink = build_sink(receiver, cluster_name="")
    event: dict[str, object] = {
        "metadata": {"uid": "u1", "resourceVersion": "1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "BackOff", "message": "m",
        "type": "Warning", "lastTimestamp": "2026-11-23T10:00:00Z"}
    body = orjson.dumps(event)
    await sink.start()
    try:
        try:
            failures = await sink.send([sink.encode(event if sink.needs_event else None, body)])
            errors = [failure.error for failure in failures]
        except RetriableSinkError as exc:
            errors = [exc]
    finally:
        await sink.close()
    assert errors, "a self-signed certificate was accepted"
    for error in errors:
        message = str(error)
        assert isinstance(error, RetriableSinkError), message
        assert f"TLS certificate problem with localhost:{https_port}" in message, message
        assert "self-signed certificate" in message and "tls.caFile" in message, message
        assert "Operation not permitted" not in message and TOKEN not in message, message
