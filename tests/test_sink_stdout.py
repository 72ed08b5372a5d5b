"""The stdout receiver and the line encoding it shares with the file receiver.

Lines are checked against the real Events of tests/corpus: what the API served must come
out unchanged, key order included.
"""

from __future__ import annotations

import io
import json
from contextlib import AsyncExitStack
from types import ModuleType
from typing import Any

import orjson
import pytest

from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError
from eventpipe.sinks.encoding import LineEncoder, de_dot
from eventpipe.sinks.stdout.sink import StdoutSink
from tests.corpus_files import CORPUS


def corpus_bodies() -> list[bytes]:
    """Every Event object in the corpus as orjson bytes (what the spool holds as `body`)."""
    files = [p for p in CORPUS.rglob("*.jsonl") if not p.name.endswith(".watch.jsonl")]
    bodies = [
        orjson.dumps(orjson.loads(line))
        for path in sorted(files)
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
    assert len(bodies) > 5000, "corpus not found"
    return bodies


def same_json(line: bytes | str, expected: dict[str, Any]) -> bool:
    """Equal values and equal key order at every level."""
    return orjson.dumps(json.loads(line)) == orjson.dumps(expected)


def layout_module() -> ModuleType:
    import eventpipe.layout as mod

    return mod


async def test_corpus_lines_are_the_served_events(cleanup: AsyncExitStack) -> None:
    out = io.BytesIO()
    sink = StdoutSink(name="out", layout=None, stream=out)
    cleanup.push_async_callback(sink.close)
    assert not sink.needs_event
    bodies = corpus_bodies()
    await sink.start()
    for i in range(0, len(bodies), 500):
        chunk = bodies[i : i + 500]
        assert await sink.send([sink.encode(None, b) for b in chunk]) == []
    await sink.close()
    lines = out.getvalue().split(b"\n")
    assert lines.pop() == b""  # newline-terminated
    assert lines == bodies  # byte for byte
    assert all(same_json(line, orjson.loads(b)) for line, b in zip(lines, bodies, strict=True))


async def test_corpus_with_cluster_name_spliced(cleanup: AsyncExitStack) -> None:
    out = io.BytesIO()
    sink = StdoutSink(name="out", layout=None, cluster_name='prod "eu"', stream=out)
    cleanup.push_async_callback(sink.close)
    bodies = corpus_bodies()
    await sink.send([sink.encode(None, b) for b in bodies])
    lines = out.getvalue().splitlines()
    assert len(lines) == len(bodies)
    for line, body in zip(lines, bodies, strict=True):
        expected = {**orjson.loads(body), "clusterName": 'prod "eu"'}
        assert same_json(line, expected)


def test_splice_edge_cases() -> None:
    enc = LineEncoder(name="r", layout=None, de_dot=False, cluster_name="c1")
    assert enc.encode(None, b"{}") == b'{"clusterName":"c1"}'
    # A nested clusterName (here an annotation) is not the top-level key: add ours at the end.
    nested = b'{"metadata":{"annotations":{"clusterName":"x"}},"reason":"R"}'
    assert json.loads(enc.encode(None, nested)) == {
        "metadata": {"annotations": {"clusterName": "x"}},
        "reason": "R",
        "clusterName": "c1",
    }
    # A top-level one is replaced where it stands: key order is kept.
    top = b'{"kind":"Event","clusterName":"old","reason":"R"}'
    assert enc.encode(None, top) == b'{"kind":"Event","clusterName":"c1","reason":"R"}'
    # No cluster name: the body is passed through as the same object.
    body = b'{"kind":"Event"}'
    assert (
        LineEncoder(name="r", layout=None, de_dot=False, cluster_name="").encode(None, body) is body
    )


def test_de_dot_like_resmo_and_copy_on_write() -> None:
    event: dict[str, object] = {
        "metadata": {"name": "e", "labels": {"app.kubernetes.io/name": "x", "plain": "y"}},
        "involvedObject": {
            "kind": "Pod",
            "labels": {"faz.net": "var"},
            "annotations": {"test.io.": "bar"},
        },
        "reason": "Started",
    }
    before = orjson.dumps(event)
    out = de_dot(event)
    assert orjson.dumps(event) == before  # resmo: DeDot must not alter the original
    assert out == {
        "metadata": {"name": "e", "labels": {"app_kubernetes_io/name": "x", "plain": "y"}},
        "involvedObject": {
            "kind": "Pod",
            "labels": {"faz_net": "var"},
            "annotations": {"test_io_": "bar"},
        },
        "reason": "Started",
    }
    nothing = {"metadata": {"labels": {"a": "b"}}, "involvedObject": {"kind": "Pod"}}
    assert de_dot(nothing) is nothing


def test_de_dot_encoding_needs_event_and_adds_cluster_name() -> None:
    enc = LineEncoder(name="r", layout=None, de_dot=True, cluster_name="c1")
    assert enc.needs_event
    body = b'{"kind":"Event","involvedObject":{"labels":{"a.b":"1"}}}'
    expected = b'{"kind":"Event","involvedObject":{"labels":{"a_b":"1"}},"clusterName":"c1"}'
    assert enc.encode(orjson.loads(body), body) == expected
    assert enc.encode(None, body) == expected  # tolerates a driver that did not parse


async def test_text_stream_and_close_idempotent(cleanup: AsyncExitStack) -> None:
    out = io.StringIO()
    sink = StdoutSink(name="out", layout=None, stream=out)
    cleanup.push_async_callback(sink.close)
    await sink.start()
    await sink.start()
    assert await sink.send([]) == []
    assert await sink.send([b'{"a":"\xc3\xa9"}', b"{}"]) == []
    await sink.close()
    await sink.close()
    assert out.getvalue() == '{"a":"é"}\n{}\n'


async def test_closed_stream_is_retriable(cleanup: AsyncExitStack) -> None:
    out = io.BytesIO()
    sink = StdoutSink(name="out", layout=None, stream=out)
    cleanup.push_async_callback(sink.close)
    out.close()
    with pytest.raises(RetriableSinkError):
        await sink.send([b"{}"])
    await sink.close()  # must not raise either


async def test_default_stream_is_stdout_buffer(
    capfdbinary: pytest.CaptureFixture[bytes], cleanup: AsyncExitStack
) -> None:
    sink = StdoutSink(name="out", layout=None)
    cleanup.push_async_callback(sink.close)
    await sink.send([b'{"x":1}'])
    assert capfdbinary.readouterr().out == b'{"x":1}\n'


async def test_layout_renders_with_cluster_name(cleanup: AsyncExitStack) -> None:
    layout_module()
    layout = {
        "msg": "{{ .Message }}",
        "kind": "{{ .InvolvedObject.Kind }}",
        "cluster": "{{ .ClusterName }}",
    }
    out = io.BytesIO()
    sink = StdoutSink(name="out", layout=layout, cluster_name="c1", stream=out)
    cleanup.push_async_callback(sink.close)
    assert sink.needs_event
    body = corpus_bodies()[0]
    event = orjson.loads(body)
    await sink.send([sink.encode(event, body)])
    assert json.loads(out.getvalue()) == {
        "msg": event["message"],
        "kind": event["involvedObject"]["kind"],
        "cluster": "c1",
    }
    assert "clusterName" not in event  # the driver's dict is not modified


def test_failing_render_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = layout_module()

    class Failing:
        def render_json(self, event: dict[str, object]) -> bytes:
            raise mod.RenderError("boom")

    monkeypatch.setattr(mod, "compile_layout", lambda obj, *, where: Failing())
    enc = LineEncoder(name="r", layout={"x": "{{ .Message }}"}, de_dot=False, cluster_name="")
    with pytest.raises(PermanentSinkError, match=r"receivers\.r\.layout"):
        enc.encode({"message": "m"}, b'{"message":"m"}')


def test_real_render_error_is_permanent() -> None:
    layout_module()
    enc = LineEncoder(name="r", layout={"x": "{{ index .Foo 5 }}"}, de_dot=False, cluster_name="")
    with pytest.raises(PermanentSinkError, match="index out of range"):
        enc.encode({"Foo": [1]}, b'{"Foo":[1]}')
    # The same template renders for an event it fits: only that event is rejected.
    assert json.loads(enc.encode({"Foo": list(range(6))}, b"{}")) == {"x": "5"}


async def test_text_layout_keeps_one_event_per_line(cleanup: AsyncExitStack) -> None:
    layout_module()
    out = io.BytesIO()
    sink = StdoutSink(name="out", layout="{{ .Reason }}: {{ .Message }}", stream=out)
    cleanup.push_async_callback(sink.close)
    events: list[dict[str, object]] = [
        {"reason": "A", "message": "two\nlines\r\n"},
        {"reason": "B", "message": "x"},
    ]
    await sink.send([sink.encode(e, orjson.dumps(e)) for e in events])
    assert out.getvalue() == b"A: two\\nlines\\r\\n\nB: x\n"


def test_invalid_layout_fails_at_construction() -> None:
    mod = layout_module()
    with pytest.raises(mod.LayoutError, match=r"receivers\.r\.layout"):
        LineEncoder(name="r", layout={"x": "{{ .Foo "}, de_dot=False, cluster_name="")


async def test_layout_sees_de_dotted_event(cleanup: AsyncExitStack) -> None:
    layout_module()
    out = io.BytesIO()
    layout = {"labels": "{{ toJson .InvolvedObject.Labels }}", "reason": "{{ .Reason }}"}
    sink = StdoutSink(name="out", layout=layout, de_dot=True, stream=out)
    cleanup.push_async_callback(sink.close)
    event: dict[str, object] = {
        "reason": "R",
        "involvedObject": {"labels": {"app.kubernetes.io/name": "web"}},
    }
    await sink.send([sink.encode(event, orjson.dumps(event))])
    rendered = json.loads(out.getvalue())
    assert json.loads(rendered["labels"]) == {"app_kubernetes_io/name": "web"}
    assert rendered["reason"] == "R"
