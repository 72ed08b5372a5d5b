"""kube-eventer's `--sink` flags: each documented form maps to the expected receiver and route,
what cannot be mapped is a clear exit-2 error, and `eventpipe run --sink` delivers end to end
(real subprocess, fake API server, webhook fake)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from eventpipe.cli import cli, translate_resmo_args
from eventpipe.config import load_config
from eventpipe.config.kube_eventer import (
    SinkFlag,
    SinkFlagError,
    apply_sink_flags,
    parse_sink_flag,
)
from eventpipe.configmap_bodies import read_configmap_bodies
from eventpipe.layout import compile_layout
from eventpipe.routing import compile_route
from tests.fakeapi import FakeApiServer
from tests.fakeapi.discovery import write_kubeconfig
from tests.fakes.webhook import WebhookReceiver
from tests.pipeline_harness import (
    child_processes,
    k8s_event,
    log_records,
    read_lines,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)

TOKEN = "a5c19f3e02feba7bd5dfc22bfb04afa212359acfe86fd80eb159187097b7d014"
BODY = {"EventType": "{{ .Type }}", "EventKind": "{{ .InvolvedObject.Kind }}",
        "EventReason": "{{ .Reason }}", "EventTime": "{{ .LastTimestamp }}",
        "EventMessage": "{{ .Message }}"}


def mapped(text: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    flag = parse_sink_flag(text)
    return flag.sink, flag.match, flag.drop


# ---- each form from kube-eventer's docs/en/*-sink.md ---------------------------------------

def test_dingtalk_doc_example() -> None:
    sink, match, drop = mapped(
        f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
        "&label=c550367cdf1e84dfabab013b277cc6bc2&level=Normal"
        "&sign=SEC4801ebab0yeuq924909668e5979f7d184b3f4bfac6a63ae36a")
    ding = sink["dingtalk"]
    assert ding["webhook"] == f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
    assert ding["secret"] == "SEC4801ebab0yeuq924909668e5979f7d184b3f4bfac6a63ae36a"
    assert ding["msgType"] == "text"
    assert ding["template"].startswith("{{ `c550367cdf1e84dfabab013b277cc6bc2` }}\n")
    assert match == {"type": "^(?:Normal|Warning)$"} and drop == {}


def test_dingtalk_defaults_to_warning_and_maps_filters() -> None:
    sink, match, drop = mapped(
        f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&namespaces=kube-system,"
        "prod&kinds=Node,Pod&exclude_reasons=Pulled,Created&msg_type=markdown&cluster_id=c55")
    assert sink["dingtalk"]["msgType"] == "markdown"
    assert sink["dingtalk"]["title"] == "Kubernetes(ID:{{ `c55` }}) Event"
    assert sink["dingtalk"]["template"] == ""  # no label: eventpipe's own markdown
    assert match == {"type": "^Warning$", "namespace": "^(?:kube\\-system|prod)$",
                     "kind": "^(?:Node|Pod)$"}
    assert drop == {"reason": "^(?:Pulled|Created)$"}


def test_wechat_group_robot_is_mapped_to_wecom() -> None:
    sink, match, _ = mapped("wechat:https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"
                            "&level=Normal&kinds=Pod&label=prod")
    assert sink["wecom"]["webhook"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"
    assert sink["wecom"]["template"].startswith("{{ `prod` }}\n")
    assert match == {"type": "^(?:Normal|Warning)$", "kind": "^(?:Pod)$"}


@pytest.mark.parametrize("text", [
    "wechat:?corp_id=a5c19f3e02feba7bd5dfc22bfb&corp_secret=a212359acfe86fd80eb1591870"
    "&agent_id=1000012&to_user=zhangshan,xiaowang&level=Normal",
    "wechat:?corp_id=a5c19f3e02feba7bd5dfc22bfb&corp_secret=a212359acfe86fd80eb1591870"
    "&agent_id=1000012&to_user=&level=Normal",
])
def test_wechat_app_api_is_a_clear_error(text: str) -> None:
    with pytest.raises(SinkFlagError) as info:
        parse_sink_flag(text, index=3)
    message = str(info.value)
    assert message.startswith("--sink #3 (wechat): option 'corp_id': ")
    assert "WeCom app API" in message and "group robot" in message
    assert "a212359acfe86fd80eb1591870" not in message  # secrets are never echoed


def test_webhook_doc_example_keeps_endpoint_params_and_maps_headers() -> None:
    sink, match, _ = mapped(
        f"webhook:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&level=Normal"
        "&namespaces=a,b&kinds=c,d&header=contentType=customContentType"
        "&header=customHeaderKey=customHeaderValue")
    hook = sink["webhook"]
    assert hook["endpoint"] == f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
    assert hook["headers"] == {"contentType": "customContentType",
                               "customHeaderKey": "customHeaderValue"}
    assert hook["method"] == "POST" and hook["layout"] == BODY
    assert match == {"type": "^(?:Normal|Warning)$", "namespace": "^(?:a|b)$",
                     "kind": "^(?:c|d)$"}


def test_webhook_without_level_takes_every_type_and_reason_is_a_regex() -> None:
    sink, match, _ = mapped("webhook:http://hooks.local/x?reason=Back.*&reason=Fail,Kill"
                            "&header=Content-Type=application/json;charset=utf-8&method=put")
    assert sink["webhook"]["contentType"] == "application/json;charset=utf-8"
    assert sink["webhook"]["method"] == "PUT" and sink["webhook"]["headers"] == {}
    assert match == {"reason": "(?:Back.*)|(?:Fail)|(?:Kill)"}


def test_webhook_custom_body_file(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"msgtype": "text", "text": {"content": "EventType:{{ .Type }}\\n'
                    'EventMessage:{{ .Message }}"}}')
    sink, _, _ = mapped(f"webhook:http://hooks.local/x?custom_body_file={body}&method=POST")
    assert sink["webhook"]["layout"] == {
        "msgtype": "text",
        "text": {"content": "EventType:{{ .Type }}\nEventMessage:{{ .Message }}"}}


def test_webhook_body_that_is_not_json_is_explained(tmp_path: Path) -> None:
    body = tmp_path / "bear.txt"  # kube-eventer's BearyChat example: not a JSON document
    body.write_text('"text":"EventType:{{ .Type }}"')
    with pytest.raises(SinkFlagError, match=r"not JSON with the templates inside string "
                                            r"values .*`layout:`"):
        parse_sink_flag(f"webhook:http://hooks.local/x?custom_body_file={body}")


def test_kafka_doc_examples() -> None:
    sink, match, _ = mapped("kafka:?brokers=localhost:9092&brokers=localhost:9093"
                            "&timeseriestopic=testseries")
    kafka = sink["kafka"]
    assert kafka["brokers"] == ["localhost:9092", "localhost:9093"]
    assert kafka["topic"] == "heapster-events" and kafka["compressionCodec"] == "none"
    assert kafka["layout"]["EventValue"] == "{{ toJson . }}" and match == {}
    sink, _, _ = mapped("kafka:?brokers=localhost:9092&eventstopic=testtopic&compression=lz4"
                        "&user=u&password=p&cacert=/ca.pem&insecuressl=true")
    kafka = sink["kafka"]
    assert kafka["topic"] == "testtopic" and kafka["compressionCodec"] == "lz4"
    assert kafka["sasl"] == {"enable": True, "username": "u", "password": "p",
                             "mechanism": "plain"}
    assert kafka["tls"] == {"enable": True, "caFile": "/ca.pem", "certFile": "",
                            "keyFile": "", "insecureSkipVerify": True}


def test_kafka_envelope_renders_like_kube_eventer() -> None:
    flag = parse_sink_flag("kafka:?brokers=localhost:9092")
    event = k8s_event("web-1", uid="u-1")
    event["source"]["host"] = "node-1"
    out = compile_layout(flag.sink["kafka"]["layout"]).render(event)
    assert isinstance(out, dict)
    assert out["EventTimestamp"] == "2026-11-23T10:00:00Z"
    assert out["EventTags"] == {"eventID": "u-1", "hostname": "node-1", "pod_id": "",
                                "pod_name": "web-1"}
    assert '"reason":"BackOff"' in out["EventValue"]


def test_elasticsearch_doc_examples() -> None:
    sink, _, _ = mapped("elasticsearch:?nodes=http://foo.com:9200&nodes=http://bar.com:9200")
    assert sink["elasticsearch"] == {"hosts": ["http://foo.com:9200", "http://bar.com:9200"],
                                     "username": "", "password": "",
                                     "indexFormat": "heapster-{2006.01.02}", "type": "events"}
    sink, _, _ = mapped("elasticsearch:http://elasticsearch.example.com:9200?sniff=false&ver=7"
                        "&index=kube&esUserName=elastic&esUserSecret=pw&use_namespace=true")
    assert sink["elasticsearch"] == {"hosts": ["http://elasticsearch.example.com:9200"],
                                     "username": "elastic", "password": "pw",
                                     "indexFormat": "kube-{{ .Namespace }}-{2006.01.02}",
                                     "type": ""}


# ---- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("kafka:?brokers=a:9092&acks=all", "--sink #1 (kafka): option 'acks': not a kafka option"),
    ("elasticsearch:http://es:9200?pipeline=p", "option 'pipeline': ingest pipelines"),
    ("elasticsearch:http://es:9200?ver=9", "option 'ver': expected 2, 5, 6, 7 or 8, got '9'"),
    ("elasticsearch:http://es:9200?esUserName=u", "option 'esUserSecret': set both"),
    (f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&region=cn",
     "option 'region': only builds Aliyun console links"),
    (f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&msg_type=card",
     "option 'msg_type': expected text or markdown, got 'card'"),
    ("dingtalk:https://oapi.dingtalk.com/robot/send?level=Warning",
     "option 'access_token': required"),
    (f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&level=Error",
     "option 'level': expected Warning or Normal, got 'Error'"),
    ("webhook:http://h/x?method=GET", "option 'method': eventpipe sends a body with POST"),
    ("webhook:http://h/x?reason=A&reasons=B", "option 'reason': give either reason"),
    ("webhook:http://h/x?custom_body_configmap_namespace=ns",
     "option 'custom_body_configmap_namespace': needs custom_body_configmap"),
    ("kafka:?eventstopic=t", "option 'brokers': required"),
    ("kafka:?brokers=a:1&compression=zstd", "option 'compression': expected none, gzip"),
    ("sls:https://sls.aliyuncs.com?logStore=x", "expected KIND:URL with KIND one of dingtalk"),
    # The receiver model's own checks, worded as for a config file:
    ("webhook:?level=Warning", "--sink #1 (webhook): give the endpoint: webhook:https://"),
    ("webhook:ftp://h/x", "--sink #1 (webhook): webhook.endpoint: endpoint: must be an "
                          "http:// or https:// URL with a host"),
])
def test_errors_name_sink_option_and_fix(text: str, expected: str) -> None:
    with pytest.raises(SinkFlagError) as info:
        parse_sink_flag(text)
    assert expected in str(info.value)
    assert TOKEN not in str(info.value)


def test_cli_bad_sink_exits_2_and_no_args_is_usage_error() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--sink", "kafka:?brokers=a:1&acks=all"])
    assert result.exit_code == 2
    assert "Error: --sink #1 (kafka): option 'acks': not a kafka option" in result.output
    result = runner.invoke(cli, ["run"])
    assert result.exit_code == 2 and "give --config FILE, or kube-eventer" in result.output


def test_kube_eventer_command_line_becomes_run() -> None:
    argv = ["--source=kubernetes:https://kubernetes.default", "--sink=dingtalk:https://x?a=1",
            "-sink", "webhook:http://h/x"]
    assert translate_resmo_args(argv) == ["run", "--sink", "dingtalk:https://x?a=1",
                                          "--sink", "webhook:http://h/x"]


# ---- routing: the filters select what kube-eventer's sinks select -------------------------

def _event(kind: str, ns: str, reason: str, type_: str) -> dict[str, Any]:
    event = k8s_event("o", namespace=ns, reason=reason)
    event["involvedObject"]["kind"], event["type"] = kind, type_
    return event


def test_routes_select_like_kube_eventer() -> None:
    flags = [parse_sink_flag(
        f"dingtalk:https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&namespaces=prod"
        "&kinds=Pod&exclude_reasons=Pulled"),
        parse_sink_flag("webhook:http://h/x?reason=^Back&level=Normal", index=2)]
    router = compile_route(apply_sink_flags(None, flags, environ={}).route)
    ding, hook = "kube-eventer-dingtalk", "kube-eventer-webhook"
    assert router.receivers_for(_event("Pod", "prod", "BackOff", "Warning")) == {ding, hook}
    assert router.receivers_for(_event("Pod", "prod", "BackOff", "Normal")) == {hook}
    assert router.receivers_for(_event("Pod", "prod-2", "Failed", "Warning")) == set()
    assert router.receivers_for(_event("Pod", "prod", "Pulled", "Warning")) == set()
    assert router.receivers_for(_event("PodGroup", "prod", "Failed", "Warning")) == set()
    assert router.receivers_for(_event("Pod", "prod", "Failed", "Warning")) == {ding}


def test_sinks_are_appended_to_a_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", receivers=[
        {"name": "kube-eventer-webhook", "file": {"path": str(tmp_path / "a.jsonl")}}],
        route={"drop": [{"namespace": "^kube-system$"}],
               "routes": [{"match": [{"receiver": "kube-eventer-webhook"}]}]})
    config = load_config(path)
    merged = apply_sink_flags(config, [parse_sink_flag("webhook:http://h/x?level=Warning")],
                              environ={"EVENTPIPE_SPOOL": "/elsewhere.db"})
    assert [r.name for r in merged.receivers] == ["kube-eventer-webhook",
                                                  "kube-eventer-webhook-2"]
    assert merged.spool.path == str(tmp_path / "spool.db")  # the config's, not the default
    router = compile_route(merged.route)
    # The config's drop rule still applies to its own receivers only.
    assert router.receivers_for(_event("Pod", "kube-system", "X", "Warning")) == {
        "kube-eventer-webhook-2"}
    assert router.receivers_for(_event("Pod", "default", "X", "Normal")) == {
        "kube-eventer-webhook"}


def test_default_spool_path() -> None:
    flag = parse_sink_flag("webhook:http://h/x")
    assert apply_sink_flags(None, [flag], environ={}).spool.path == "./eventpipe-spool.db"
    assert apply_sink_flags(None, [flag], environ={"EVENTPIPE_SPOOL": "/s.db"}
                            ).spool.path == "/s.db"


# ---- the body template from a ConfigMap, read through the API ------------------------------

async def test_custom_body_configmap_is_read_from_the_api(tmp_path: Path) -> None:
    seen: list[str] = []

    async def configmap(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.match_info["name"] != "custom-body":
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"},
                                     status=404)
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "custom-body", "namespace": "kube-system"},
                                  "data": {"content": '{"text": "{{ .Reason }}"}'}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", configmap)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        kubeconfig = write_kubeconfig(tmp_path / "kc", server=f"http://127.0.0.1:{port}",
                                      token="t")
        flags = [parse_sink_flag("webhook:http://h/x?custom_body_configmap=custom-body"
                                 "&custom_body_configmap_namespace=kube-system"),
                 parse_sink_flag("kafka:?brokers=a:1", index=2)]
        assert flags[0].configmap == ("kube-system", "custom-body")
        done = await read_configmap_bodies(flags, str(kubeconfig))
        assert done[0].sink["webhook"]["layout"] == {"text": "{{ .Reason }}"}
        assert done[0].configmap is None and done[1] is flags[1]
        assert seen == ["/api/v1/namespaces/kube-system/configmaps/custom-body"]
        missing = [parse_sink_flag("webhook:http://h/x?custom_body_configmap=nope")]
        with pytest.raises(SinkFlagError, match=r"cannot read ConfigMap default/nope: 404"):
            await read_configmap_bodies(missing, str(kubeconfig))
    finally:
        await runner.cleanup()


# ---- end to end: `eventpipe run --sink` as a real process ----------------------------------

def _sink(hook: WebhookReceiver) -> str:
    return f"webhook:{hook.url()}?level=Warning&method=POST"


async def _deliver_warnings_only(api: FakeApiServer, hook: WebhookReceiver, argv: list[str],
                                 tmp_path: Path, also: Callable[[], bool] = lambda: True
                                 ) -> list[str]:
    """Start eventpipe with `argv`, add Normal and Warning events, return the webhook's
    EventReasons once the last Warning arrived; the Normal before it must have been skipped."""
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(proc := await start_subprocess(tmp_path / "unused", log=log, argv=argv))
        await wait_started(proc, log)
        await api.wait_for_watchers(1, within=20)
        api.add(k8s_event("a", reason="BackOff"))
        normal = k8s_event("b", reason="Scheduled")
        normal["type"] = "Normal"
        api.add(normal)
        api.add(k8s_event("c", reason="Failed"))
        await hook.wait_for(lambda h: len(h.accepted) >= 2, what="two warnings")
        await wait_until(also, what="the other receivers")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0
    return [body["EventReason"] for body in hook.json_items()]


async def test_run_with_sink_only(api: FakeApiServer, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTPIPE_SPOOL", str(tmp_path / "spool.db"))
    async with WebhookReceiver() as hook:
        argv = ["run", "--kubeconfig", str(tmp_path / "kubeconfig"),
                "--metrics-address", "127.0.0.1:0", "--sink", _sink(hook)]
        assert await _deliver_warnings_only(api, hook, argv, tmp_path) == ["BackOff", "Failed"]
        first = hook.accepted[0]
        assert first.method == "POST" and first.path == "/hook"
        assert first.json() == {"EventType": "Warning", "EventKind": "Pod",
                                "EventReason": "BackOff", "EventTime": "2026-11-23T10:00:00Z",
                                "EventMessage": "BackOff on a"}
    assert (tmp_path / "spool.db").exists()
    started = next(r for r in log_records(tmp_path / "eventpipe.log")
                   if r["msg"] == "eventpipe started")
    assert started["receivers"] == ["kube-eventer-webhook"]


async def test_run_with_config_and_sink(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info"})
    async with WebhookReceiver() as hook:
        argv = ["--source=kubernetes:https://kubernetes.default", f"--sink={_sink(hook)}",
                "--config", str(config), "--metrics-address", "127.0.0.1:0"]
        out = tmp_path / "events.jsonl"
        assert await _deliver_warnings_only(api, hook, argv, tmp_path,
                                            lambda: len(read_lines(out)) == 3
                                            ) == ["BackOff", "Failed"]
    # The config's own file receiver still gets everything, Normal included.
    assert [e["reason"] for e in read_lines(tmp_path / "events.jsonl")] == [
        "BackOff", "Scheduled", "Failed"]


def test_flag_dataclass_is_plain_data() -> None:
    flag = parse_sink_flag("kafka:?brokers=a:1")
    assert isinstance(flag, SinkFlag) and flag.kind == "kafka" and flag.configmap is None
