"""The IM bot receivers (wecom, dingtalk, feishu, slack, bark): config, default messages and
templates, signatures (the fakes verify them), truncation, error codes, against tests.fakes.im.
End-to-end runs through eventpipe live in tests/test_sink_im_e2e.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from pydantic import ValidationError

from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError
from eventpipe.sinks.bark.config import BarkSinkConfig
from eventpipe.sinks.bark.sink import BarkSink
from eventpipe.sinks.dingtalk.config import DingtalkSinkConfig
from eventpipe.sinks.dingtalk.sink import DingtalkSink, dingtalk_sign
from eventpipe.sinks.feishu.config import FeishuSinkConfig
from eventpipe.sinks.feishu.sink import FeishuSink
from eventpipe.sinks.im.message import TRUNCATED, markdown_text, plain_text, truncate
from eventpipe.sinks.im.sink import ImSink
from eventpipe.sinks.slack.config import SlackSinkConfig
from eventpipe.sinks.slack.sink import SlackSink
from eventpipe.sinks.wecom.config import WecomSinkConfig
from eventpipe.sinks.wecom.sink import WecomSink
from tests.fakes.im import DingtalkBot, FeishuBot, WecomBot
from tests.fakes.im_push import BarkServer, SlackApi
from tests.pipeline_harness import CORPUS, k8s_event

BIG_WARNING = "95328608-fd54-48c2-a3b0-cb3427b896fe"  # a ~10 kB Warning message


def corpus_event(uid: str) -> dict[str, Any]:
    with (CORPUS / "03_must-gather-clean-aws.jsonl").open("rb") as handle:
        for line in handle:
            if uid.encode() in line:
                event: dict[str, Any] = orjson.loads(line)
                return event
    raise AssertionError(uid)


def event(name: str, **extra: Any) -> dict[str, Any]:
    return {**k8s_event(name, uid=f"uid-{name}"), **extra}


async def deliver(sink: ImSink, events: list[dict[str, Any]]) -> list[tuple[int, bool]]:
    """Encode and send like the driver: (index, retriable) of each failure."""
    payloads = [sink.encode(e, orjson.dumps(e)) for e in events]
    await sink.start()
    try:
        return [(f.index, f.error.retriable) for f in await sink.send(payloads)]
    finally:
        await sink.close()


@pytest.fixture
async def wecom() -> AsyncIterator[WecomBot]:
    async with WecomBot() as bot:
        yield bot


# ---- config ------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "raw", "message"), [
    (WecomSinkConfig, {"webhook": "ftp://h/?key=s3cret"}, "http:// or https://"),
    (WecomSinkConfig, {"webhook": "http://h/?key=s3cret", "template": "{{ .Reason "},
     "template"),
    (WecomSinkConfig, {"webhook": "http://h/?key=s3cret", "msgType": "markdown",
                       "mentionedList": ["@all"]}, "cannot mention"),
    (WecomSinkConfig, {"webhook": "http://h/?key=s3cret", "msgType": "card"}, "msgType"),
    (DingtalkSinkConfig, {"webhook": "http://h/?access_token=s3cret", "title": "{{ end }}"},
     "title"),
    (FeishuSinkConfig, {"webhook": "http://h/s3cret", "msgType": "markdown"}, "msgType"),
    (SlackSinkConfig, {"channel": "#x"}, "token: required"),
    (SlackSinkConfig, {"token": "s3cret"}, "channel: required"),
    (SlackSinkConfig, {"token": "s3cret", "webhookURL": "https://h/s3cret"}, "give one"),
    (SlackSinkConfig, {"token": "s3cret", "channel": "#x", "fields": {"a": "{{ .X"}},
     "fields.a"),
    (BarkSinkConfig, {}, "deviceKey"),
    (BarkSinkConfig, {"deviceKey": "s3cret", "level": "loud"}, "level"),
])
def test_config_rejects(model: Any, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    assert message in str(info.value)
    assert all("s3cret" not in error["msg"] for error in info.value.errors())


def test_config_defaults_hide_secrets() -> None:
    cfg = DingtalkSinkConfig.model_validate(
        {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=s3cret",
         "secret": "SECs3cret", "tls": None, "timeout": "3s"})
    assert (cfg.msg_type, cfg.timeout, cfg.is_at_all) == ("text", 3.0, False)
    assert "s3cret" not in repr(cfg)
    bark = BarkSinkConfig.model_validate({"deviceKey": "s3cret", "body": "{{ .Message }}"})
    assert (bark.server_url, bark.template) == ("https://api.day.app", "{{ .Message }}")
    assert "s3cret" not in repr(bark)
    slack = SlackSinkConfig.model_validate({"token": "s3cret", "channel": "#ops",
                                            "template": "x"})
    assert slack.template == "x" and slack.api_url == "https://slack.com/api"


# ---- the shared message ------------------------------------------------------------------

def test_default_message_plain_and_markdown_core_and_events_v1() -> None:
    core = event("web-1", count=7, lastTimestamp="2026-11-23T10:05:00Z")
    assert plain_text(core, "prod") == (
        "Cluster: prod\nType: Warning\nNamespace: default\nObject: Pod/web-1\n"
        "Reason: BackOff\nCount: 7\nLast seen: 2026-11-23 10:05:00 UTC\n"
        "Message: BackOff on web-1")
    assert markdown_text(core, "").splitlines()[0] == "**Warning BackOff: default/Pod/web-1**"
    v1: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "type": "Normal",
          "reason": "Pulled", "note": "pulled\nimage",
          "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"},
          "series": {"count": 3, "lastObservedTime": "2026-01-02T03:04:05.000000Z"},
          "metadata": {"name": "p.1", "namespace": "ns"}}
    md = markdown_text(v1, "")
    assert "- Object: Pod/p" in md and "- Count: 3" in md
    assert "- Last seen: 2026-01-02 03:04:05 UTC" in md and md.endswith("> pulled\n> image")


def test_truncate_counts_bytes_and_says_so() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("é" * 100, 51)  # 2-byte characters: never half of one
    assert cut.endswith(TRUNCATED) and len(cut.encode()) <= 51
    assert cut.removesuffix(TRUNCATED) == "é" * ((51 - len(TRUNCATED.encode())) // 2)


# ---- WeCom -------------------------------------------------------------------------------

async def test_wecom_text_with_mentions_and_template(wecom: WecomBot) -> None:
    sink = WecomSink(name="wx", cluster_name="prod", cfg=WecomSinkConfig.model_validate({
        "webhook": wecom.hook(), "mentionedList": ["@all"], "mentionedMobileList": ["138"]}))
    templated = WecomSink(name="wx", cfg=WecomSinkConfig.model_validate({
        "webhook": wecom.hook(), "msgType": "markdown",
        "template": "{{ .ClusterName }} **{{ .Reason }}** {{ .InvolvedObject.Name }}"}),
        cluster_name="c1")
    assert await deliver(sink, [event("a")]) == []
    assert await deliver(templated, [event("b")]) == []
    first, second = wecom.messages()
    assert first == {"msgtype": "text", "text": {
        "content": plain_text(event("a"), "prod"), "mentioned_list": ["@all"],
        "mentioned_mobile_list": ["138"]}}
    assert second == {"msgtype": "markdown", "markdown": {"content": "c1 **BackOff** b"}}
    assert wecom.requests[0].headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(("msg_type", "limit"), [("text", 2048), ("markdown", 4096)])
async def test_wecom_truncation_says_so_and_is_accepted(
        wecom: WecomBot, msg_type: str, limit: int) -> None:
    big = corpus_event(BIG_WARNING)
    sink = WecomSink(name="wx", cfg=WecomSinkConfig.model_validate(
        {"webhook": wecom.hook(), "msgType": msg_type}))
    assert await deliver(sink, [big]) == []
    content = wecom.messages()[0][msg_type]["content"]
    assert content.endswith(TRUNCATED) and limit - 4 < len(content.encode()) <= limit
    # The fake refuses what the real API refuses: the untruncated text.
    wecom.reject_when(None)
    raw = WecomSink(name="wx", cfg=WecomSinkConfig.model_validate(
        {"webhook": wecom.hook(), "msgType": msg_type, "template": "{{ .Message }}{{ .Message }}"}))
    raw._text._limit = 10**6  # as if there were no truncation
    assert await deliver(raw, [big]) == [(0, False)]
    assert wecom.requests[-1].status == 200 and len(wecom.delivered) == 1


async def test_wecom_errcodes_rate_limit_permanent_and_bad_key(
        wecom: WecomBot, cleanup: contextlib.AsyncExitStack) -> None:
    cfg = WecomSinkConfig.model_validate({"webhook": wecom.hook(), "template": "{{ .Message }}"})
    sink = WecomSink(name="wx", cfg=cfg)
    cleanup.push_async_callback(sink.close)
    events = [event("a"), event("empty", message=""), event("b"), event("c"), event("d")]
    wecom.limit(2)
    # a ok, "empty" -> 44004 alone, b ok, c rate limited -> c and d retriable, d not sent.
    assert await deliver(sink, events) == [(1, False), (3, True), (4, True)]
    assert [m["text"]["content"] for m in wecom.messages()] == ["BackOff on a", "BackOff on b"]
    assert len(wecom.requests) == 4
    wecom.limit(None)
    assert await deliver(sink, events[3:]) == []  # the retry delivers them, in order
    assert [m["text"]["content"] for m in wecom.messages()][2:] == ["BackOff on c",
                                                                    "BackOff on d"]
    wecom.limit(0)
    payloads = [sink.encode(e, b"") for e in events[:2]]
    with pytest.raises(RetriableSinkError, match="45009"):  # nothing sent: the whole batch
        await sink.send(payloads)
    wrong = WecomSink(name="wx", cfg=WecomSinkConfig.model_validate(
        {"webhook": wecom.url("/cgi-bin/webhook/send?key=s3cret")}))
    cleanup.push_async_callback(wrong.close)
    with pytest.raises(RetriableSinkError, match="93000") as info:
        await deliver(wrong, [event("a")])
    assert "s3cret" not in str(info.value)
    await wecom.stop()  # the outage under test; the fixture stops it again (idempotent)
    with pytest.raises(RetriableSinkError) as refused:
        await deliver(wrong, [event("a")])
    assert "s3cret" not in str(refused.value) and "WeCom" in str(refused.value)


# ---- DingTalk ----------------------------------------------------------------------------

async def test_dingtalk_signed_markdown_with_mentions() -> None:
    async with DingtalkBot(secret="SECs3cret") as bot:
        sink = DingtalkSink(name="dd", cfg=DingtalkSinkConfig.model_validate({
            "webhook": bot.hook(), "secret": "SECs3cret", "msgType": "markdown",
            "atMobiles": ["13800000000"], "title": "{{ .Reason }} in {{ .Namespace }}"}))
        assert await deliver(sink, [event("a"), event("b")]) == []
        assert len(bot.delivered) == 2  # the fake verified both signatures
        message = bot.messages()[0]
        assert message["msgtype"] == "markdown"
        assert message["markdown"]["title"] == "BackOff in default"
        assert message["markdown"]["text"] == markdown_text(event("a"), "") + "\n\n@13800000000"
        assert message["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
        query = bot.delivered[0].query
        assert abs(int(query["timestamp"]) - time.time() * 1000) < 60_000

        # A wrong secret and a stale timestamp are refused as DingTalk refuses them.
        other = DingtalkSink(name="dd", cfg=DingtalkSinkConfig.model_validate(
            {"webhook": bot.hook(), "secret": "SECother"}))
        assert await deliver(other, [event("c")]) == [(0, False)]
        stale = int((time.time() - 3700) * 1000)
        async with aiohttp.ClientSession() as session, session.post(
                f"{bot.hook()}&timestamp={stale}&sign={dingtalk_sign('SECs3cret', stale)}",
                json={"msgtype": "text", "text": {"content": "x"}}) as resp:
            assert (await resp.json())["errmsg"] == "invalid timestamp"
        bot.clock = lambda: time.time() + 7200  # an hour and more after our clock
        assert await deliver(sink, [event("d")]) == [(0, False)]
        assert bot.requests[-1].status == 200 and len(bot.delivered) == 2


def test_dingtalk_sign_matches_the_documented_recipe() -> None:
    # DingTalk's Python sample, step by step: hmac(secret, f"{ts}\n{secret}"), base64, quote_plus.
    import base64
    import hashlib
    import hmac
    import urllib.parse

    secret, ts = "SEC000000000000000000000", 1700000000000
    code = hmac.new(secret.encode("utf-8"), f"{ts}\n{secret}".encode(),
                    digestmod=hashlib.sha256).digest()
    assert dingtalk_sign(secret, ts) == urllib.parse.quote_plus(base64.b64encode(code))


async def test_dingtalk_rate_limit_and_size() -> None:
    async with DingtalkBot() as bot:
        sink = DingtalkSink(name="dd", cfg=DingtalkSinkConfig.model_validate(
            {"webhook": bot.hook(), "isAtAll": True}))
        bot.limit(1)
        assert await deliver(sink, [event("a"), event("b")]) == [(1, True)]
        assert bot.requests[-1].json()["at"]["isAtAll"] is True
        bot.limit(None)
        big = {**event("big"), "message": "x" * 30000}
        assert await deliver(sink, [big]) == []
        content = bot.messages()[-1]["text"]["content"]
        assert content.endswith(TRUNCATED) and len(content.encode()) <= 20000


# ---- Feishu ------------------------------------------------------------------------------

async def test_feishu_signed_text_and_card() -> None:
    async with FeishuBot(secret="s3cret") as bot:
        text = FeishuSink(name="fs", cluster_name="prod", cfg=FeishuSinkConfig.model_validate(
            {"webhook": bot.hook(), "secret": "s3cret"}))
        card = FeishuSink(name="fs", cfg=FeishuSinkConfig.model_validate(
            {"webhook": bot.hook(), "secret": "s3cret", "msgType": "interactive",
             "template": "{{ .Message }}"}))
        assert await deliver(text, [event("a")]) == []
        assert await deliver(card, [event("b", type="Normal")]) == []
        first, second = bot.messages()
        assert first["content"] == {"text": plain_text(event("a"), "prod")}
        assert first["timestamp"].isdigit() and abs(int(first["timestamp"]) - time.time()) < 60
        assert second["msg_type"] == "interactive"
        assert second["card"]["header"] == {
            "title": {"tag": "plain_text", "content": "Normal BackOff: default/Pod/b"},
            "template": "blue"}
        assert second["card"]["elements"][0]["text"]["content"] == "BackOff on b"
        wrong = FeishuSink(name="fs", cfg=FeishuSinkConfig.model_validate(
            {"webhook": bot.hook(), "secret": "other"}))
        with pytest.raises(RetriableSinkError, match="19021"):  # waits for the operator
            await deliver(wrong, [event("c")])
        bot.limit(0)
        with pytest.raises(RetriableSinkError, match="11232"):
            await deliver(text, [event("d")])
        bot.limit(None)
        big = corpus_event(BIG_WARNING)
        big["message"] = big["message"] * 3
        assert await deliver(card, [big]) == []  # under Feishu's 20 KB body limit
        assert bot.messages()[-1]["card"]["elements"][0]["text"]["content"].endswith(TRUNCATED)


# ---- Slack -------------------------------------------------------------------------------

RESMO_SLACK = '''\
receivers:
  - name: "slack"
    slack:
      token: YOUR-API-TOKEN-HERE
      channel: "@{{ .InvolvedObject.Labels.owner }}"
      message: "{{ .Message }}"
      color: # optional
      title: # optional
      author_name: # optional
      footer: # optional
      fields:
        namespace: "{{ .Namespace }}"
        reason: "{{ .Reason }}"
        object: "{{ .Namespace }}"
'''


async def test_slack_resmo_example_against_the_api() -> None:
    raw = yaml.safe_load(RESMO_SLACK)["receivers"][0]["slack"]
    async with SlackApi(token="YOUR-API-TOKEN-HERE") as api:
        sink = SlackSink(name="slack", cfg=SlackSinkConfig.model_validate(
            {**raw, "apiURL": api.api()}))
        owned = event("a", message="a < b & c")
        owned["involvedObject"]["labels"] = {"owner": "alice"}
        # No owner label: the channel renders "@", which Slack refuses -> that one is dead.
        assert await deliver(sink, [owned, event("b")]) == [(1, False)]
        (message,) = api.messages()
        assert message["channel"] == "@alice"
        assert message["text"] == "a &lt; b &amp; c"
        assert message["attachments"] == [{"fields": [
            {"title": "namespace", "value": "default", "short": False},
            {"title": "object", "value": "default", "short": False},
            {"title": "reason", "value": "BackOff", "short": False}]}]
        assert api.delivered[0].headers["Authorization"] == "Bearer YOUR-API-TOKEN-HERE"
        api.limit(0)
        with pytest.raises(RetriableSinkError, match="ratelimited"):
            await deliver(sink, [owned])
        api.limit(None)
        bad = SlackSink(name="slack", cfg=SlackSinkConfig.model_validate(
            {**raw, "token": "xoxb-wrong", "apiURL": api.api()}))
        with pytest.raises(RetriableSinkError, match="invalid_auth") as info:
            await deliver(bad, [owned])
        assert "xoxb-wrong" not in str(info.value)


async def test_slack_incoming_webhook_default_message() -> None:
    async with SlackApi() as api:
        sink = SlackSink(name="slack", cluster_name="prod", cfg=SlackSinkConfig.model_validate(
            {"webhookURL": api.incoming(), "color": "danger", "title": "{{ .Reason }}"}))
        assert await deliver(sink, [event("a")]) == []
        assert api.messages() == [{"text": plain_text(event("a"), "prod"),
                                   "attachments": [{"color": "danger", "title": "BackOff"}]}]
        api.limit(0)
        with pytest.raises(RetriableSinkError, match="429"):
            await deliver(sink, [event("b")])


# ---- Bark --------------------------------------------------------------------------------

async def test_bark_push_fields_and_errors() -> None:
    async with BarkServer() as server:
        cfg = {"serverURL": server.url("/"), "deviceKey": "bark-device", "group": "k8s",
               "level": "timeSensitive", "sound": "alarm", "url": "https://grafana/x"}
        sink = BarkSink(name="bark", cfg=BarkSinkConfig.model_validate(cfg))
        assert await deliver(sink, [event("a"), corpus_event(BIG_WARNING)]) == []
        first, big = server.messages()
        assert first == {"device_key": "bark-device", "group": "k8s", "level": "timeSensitive",
                         "sound": "alarm", "url": "https://grafana/x",
                         "title": "Warning BackOff: default/Pod/a",
                         "body": plain_text(event("a"), "")}
        assert big["body"].endswith(TRUNCATED)
        unknown = BarkSink(name="bark", cfg=BarkSinkConfig.model_validate(
            {**cfg, "deviceKey": "s3cret", "title": "{{ .Reason }}", "body": "{{ .Message }}"}))
        assert await deliver(unknown, [event("b")]) == [(0, False)]
        assert server.requests[-1].json()["title"] == "BackOff"


def test_template_render_error_is_a_dead_letter() -> None:
    sink = WecomSink(name="wx", cfg=WecomSinkConfig.model_validate(
        {"webhook": "http://127.0.0.1:1/?key=k", "template": "{{ len 3 }}"}))
    with pytest.raises(PermanentSinkError, match=r"receivers\.wx\.template"):
        sink.encode(event("a"), b"")
