"""IM bot receivers through eventpipe run in-process against the fake API server: corpus
Warning events to WeCom and DingTalk (rate limits waited out, signatures verified, a refused
message dead-lettered), an outage next to a file receiver, and resmo's README Slack example."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventpipe.config import load_config
from eventpipe.sinks.im.message import plain_text
from eventpipe.spool import Spool
from tests import pipeline_harness as harness
from tests.fakeapi import FakeApiServer
from tests.fakes.im import DingtalkBot, WecomBot
from tests.fakes.im_push import SlackApi
from tests.pipeline_harness import read_lines, running, wait_until
from tests.test_sink_im import RESMO_SLACK

FAST = {"retry": {"initialBackoff": "20ms", "maxBackoff": "200ms"},
        "batch": {"maxEvents": 50, "maxWait": 0}}


def small_corpus() -> list[Path]:
    """The corpus without its 5000-event must-gather file: ~55 Warning events."""
    return [p for p in harness.corpus_files() if not p.name.startswith("03_")]


def config(tmp: Path, bot: dict[str, Any], *, warnings_only: bool = True,
           extra: dict[str, Any] | None = None) -> Path:
    """Receiver `bot` (fast retries) and a file receiver `dump`, both on the same route."""
    match: dict[str, Any] = {"type": "Warning"} if warnings_only else {}
    return harness.write_config(
        tmp, kubeconfig=tmp / "kubeconfig", extra=extra,
        receivers=[{"name": "bot", **bot, **FAST},
                   {"name": "dump", "file": {"path": str(tmp / "events.jsonl")}}],
        route={"routes": [{"match": [{**match, "receiver": "bot"}]},
                          {"match": [{**match, "receiver": "dump"}]}]})


async def dead_letters(tmp: Path, receiver: str) -> list[Any]:
    spool = await Spool.open(tmp / "spool.db")
    try:
        return list(await spool.dead_letters(receiver))
    finally:
        await spool.close()


@pytest.fixture
async def robot() -> AsyncIterator[WecomBot]:
    bot = WecomBot(token="e2e-key")
    await bot.start()
    yield bot
    await bot.stop()


async def test_wecom_corpus_warnings_arrive_in_order_despite_the_rate_limit(
        api: FakeApiServer, robot: WecomBot, tmp_path: Path) -> None:
    wecom = robot
    api.load_corpus(small_corpus())
    wecom.limit(8, per=0.5)  # the robot refuses with 45009 past 8 messages in 0.5 s
    path = config(tmp_path, {"wecom": {"webhook": wecom.hook()}}, extra={"clusterName": "e2e"})
    out = tmp_path / "events.jsonl"
    latest: dict[str, Any] = {}  # LIST shows each uid's latest version
    for change in api.store.changes_after(0, 10**9):
        if change.type in ("ADDED", "MODIFIED"):
            latest[change.uid] = change.obj
    warnings = sum(1 for obj in latest.values() if obj.get("type") == "Warning")
    assert warnings > 40
    async with running(path):
        await wecom.wait_for(lambda _: len(wecom.delivered) >= warnings, within=40,
                             what=f"{warnings} Warning events at the robot")
    lines = read_lines(out)
    assert len(lines) == warnings
    assert all(line["type"] == "Warning" for line in lines)
    # Spool order, each exactly once, the default text rendered from the event as served.
    assert [m["text"]["content"] for m in wecom.messages()] == [
        plain_text(line, "e2e") for line in lines]
    assert len(wecom.requests) > len(wecom.delivered)  # some were refused, then delivered
    assert await dead_letters(tmp_path, "bot") == []


async def test_dingtalk_signed_corpus_and_a_refused_message_is_dead_lettered(
        api: FakeApiServer, tmp_path: Path) -> None:
    api.load_corpus(small_corpus())
    async with DingtalkBot(secret="SECe2e") as bot:
        path = config(tmp_path, {"dingtalk": {
            "webhook": bot.hook(), "secret": "SECe2e", "msgType": "markdown",
            "template": "{{ if .Message }}{{ .UID }} {{ .Message }}{{ end }}"}},
            warnings_only=False)
        out = tmp_path / "events.jsonl"
        async with running(path):
            # Markdown needs a title and a text: an empty one is refused (errcode 40035).
            api.add({**harness.k8s_event("quiet", uid="uid-quiet"), "message": ""})
            await wait_until(lambda: any(e["metadata"]["uid"] == "uid-quiet"
                                         for e in read_lines(out)), what="the quiet event")
            total = len(read_lines(out))
            await wait_until(lambda: len(bot.requests) >= total, within=40,
                             what="a request per event")
        sent = [m["markdown"]["text"].split(" ", 1)[0] for m in bot.messages()]
        lines = read_lines(out)
        quiet = [e["metadata"]["uid"] for e in lines if not (e.get("message") or e.get("note"))]
        assert "uid-quiet" in quiet
        # Order kept, every signature valid; each empty text refused once, then dead.
        assert sent == [e["metadata"]["uid"] for e in lines if e["metadata"]["uid"] not in quiet]
        letters = await dead_letters(tmp_path, "bot")
        assert len(letters) == len(quiet) and all("40035" in letter[2] for letter in letters)
        assert "SECe2e" not in letters[0][2] and bot.token not in letters[0][2]


async def test_outage_loses_nothing_and_never_slows_the_file_receiver(
        api: FakeApiServer, robot: WecomBot, tmp_path: Path) -> None:
    wecom = robot
    path = config(tmp_path, {"wecom": {"webhook": wecom.hook(), "template": "{{ .UID }}"}})
    out = tmp_path / "events.jsonl"
    async with running(path) as pipeline:
        gauge = pipeline.metrics.sink_lag_events.labels("bot")
        for i in range(5):
            api.add(harness.k8s_event(f"before-{i}", uid=f"uid-before-{i}"))
        await wecom.wait_for(lambda b: len(b.accepted) == 5, what="5 messages before")
        await wecom.stop()
        started = time.monotonic()
        for i in range(30):
            api.add(harness.k8s_event(f"down-{i}", uid=f"uid-down-{i}"))
        await wait_until(lambda: len(read_lines(out)) == 35, within=10, what="35 file lines")
        assert time.monotonic() - started < 10 and not wecom.running
        # The app refreshes lag on a timer while the receiver is down.
        await wait_until(lambda: gauge._value.get() >= 30, what="lag of the 30 waiting")
        await wecom.start()
        await wecom.wait_for(lambda _: len({m["text"]["content"] for m in wecom.messages()}) == 35,
                             what="every message")
        await wait_until(lambda: gauge._value.get() == 0, what="lag back to 0")
    got = list(dict.fromkeys(m["text"]["content"] for m in wecom.messages()))
    assert got == [e["metadata"]["uid"] for e in read_lines(out)]


async def test_resmo_readme_slack_example_loads_and_runs(
        api: FakeApiServer, tmp_path: Path) -> None:
    path = tmp_path / "resmo.yaml"
    path.write_text("route:\n  routes:\n    - match:\n        - receiver: slack\n" + RESMO_SLACK)
    assert load_config(path).receivers[0].sink_type == "slack"  # unchanged
    async with SlackApi(token="YOUR-API-TOKEN-HERE") as slack:
        ours = yaml.safe_load(path.read_text())
        ours["receivers"][0]["slack"]["apiURL"] = slack.api()
        ours.update({"kubeconfig": str(tmp_path / "kubeconfig"),
                     "spool": {"path": str(tmp_path / "spool.db")},
                     "http": {"address": "127.0.0.1", "port": 0}})
        path.write_text(yaml.safe_dump(ours))
        owned = harness.k8s_event("owned", uid="uid-owned", message="image <x> not found")
        owned["involvedObject"]["labels"] = {"owner": "alice"}
        api.add(owned)
        async with running(path):
            await slack.wait_for(lambda s: len(s.accepted) == 1, what="the message")
        (message,) = slack.messages()
        assert message["channel"] == "@alice"
        assert message["text"] == "image &lt;x&gt; not found"
        assert [f["title"] for f in message["attachments"][0]["fields"]] == [
            "namespace", "object", "reason"]
