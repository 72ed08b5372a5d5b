"""The peers benchmark's webhook counts what the exporters sent it: each version once per
request, copies across requests as duplicates, and refuses connections while it is down."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from bench.peers.sink import WebhookSink, token


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return int(resp.status)


def test_counts_served_versions_and_duplicates() -> None:
    sink = WebhookSink()
    try:
        served = {token("e0001", 1), token("e0001", 2), token("e0002", 1)}
        # A layout that quotes the message twice is still one delivery of that version.
        twice = f'{{"message": "{token("e0001", 1)}", "raw": "{token("e0001", 1)}"}}'
        assert _post(sink.url, twice.encode()) == 200
        assert _post(sink.url, f'[{{"m": "{token("e0001", 2)}"}}]'.encode()) == 200
        assert _post(sink.url, f'{{"m": "{token("e0001", 2)}"}}'.encode()) == 200
        assert _post(sink.url, f'{{"m": "{token("e0009", 1)}"}}'.encode()) == 200
        assert sink.tally(served) == (2, 1)
    finally:
        sink.down()


def test_down_refuses_and_up_listens_on_the_same_port() -> None:
    sink = WebhookSink()
    try:
        port = sink.port
        sink.down()
        with pytest.raises(urllib.error.URLError):
            _post(sink.url, token("e0001", 1).encode())
        sink.up()
        assert sink.port == port
        assert _post(sink.url, token("e0001", 1).encode()) == 200
        assert sink.tally({token("e0001", 1)}) == (1, 0)
    finally:
        sink.down()
