"""The five kube-eventer sinks eventpipe maps: dingtalk, wechat, webhook, kafka, elasticsearch.

Each mapper reads its options from `Options` and fills the flag's receiver entry with eventpipe's
keys. Where kube-eventer's output has a fixed shape that consumers parse (the webhook's default
body, the Kafka message envelope) the mapping reproduces it with a layout; IM bots keep
eventpipe's message text, with kube-eventer's `label` lines on top.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import SplitResult, urlencode, urlunsplit

from eventpipe.config.kube_eventer_options import Options, SinkFlag, SinkFlagError, anchored

# kube-eventer's webhook body when no custom body is given (sinks/webhook/webhook.go).
DEFAULT_WEBHOOK_BODY: Mapping[str, str] = {
    "EventType": "{{ .Type }}", "EventKind": "{{ .InvolvedObject.Kind }}",
    "EventReason": "{{ .Reason }}", "EventTime": "{{ .LastTimestamp }}",
    "EventMessage": "{{ .Message }}"}
# kube-eventer's Kafka message (sinks/kafka/driver.go): the event as a JSON string plus tags.
KAFKA_ENVELOPE: Mapping[str, Any] = {
    "EventValue": "{{ toJson . }}", "EventTimestamp": "{{ .LastTimestamp }}",
    "EventTags": {"eventID": "{{ .UID }}", "hostname": "{{ .Source.Host }}",
                  "pod_id": '{{ if eq .InvolvedObject.Kind "Pod" }}{{ .InvolvedObject.UID }}'
                            "{{ end }}",
                  "pod_name": '{{ if eq .InvolvedObject.Kind "Pod" }}{{ .InvolvedObject.Name }}'
                              "{{ end }}"}}
_TEXT = ("{{ with .ClusterName }}Cluster: {{ . }}\n{{ end }}Type: {{ .Type }}\n"
         "Namespace: {{ .Namespace }}\nObject: {{ .InvolvedObject.Kind }}/"
         "{{ .InvolvedObject.Name }}\nReason: {{ .Reason }}\nCount: {{ .Count }}\n"
         "Last seen: {{ .LastTimestamp }}\nMessage: {{ .Message }}")
_WECHAT_APP = ("corp_id", "corp_secret", "agent_id", "to_user")


def _robot_url(options: Options, url: SplitResult, keep: Sequence[str]) -> str:
    query = urlencode([(k, v) for k in keep for v in options.all(k)[:1]])
    return urlunsplit((url.scheme, url.netloc, url.path, query, ""))


def _label_template(options: Options, markdown: bool) -> str:
    labels = options.all("label")
    if any("`" in lab for lab in labels):
        raise options.error("label", "a label cannot contain a backtick")
    if not labels:
        return ""
    if markdown:  # DingTalk markdown needs a blank line between lines
        return "".join(f"**{{{{ `{lab}` }}}}**\n\n" for lab in labels) + _TEXT.replace(
            "\n", "\n\n")
    return "".join(f"{{{{ `{lab}` }}}}\n" for lab in labels) + _TEXT


def _dingtalk(o: Options, url: SplitResult, flag: SinkFlag) -> SinkFlag:
    if not o.one("access_token"):
        raise o.error("access_token", "required: the DingTalk robot's token")
    if o.all("region"):
        raise o.error("region", "only builds Aliyun console links in kube-eventer's markdown; "
                                "eventpipe does not: remove it")
    msg_type = o.one("msg_type", "text")
    if msg_type not in ("text", "markdown"):
        raise o.error("msg_type", f"expected text or markdown, got {msg_type!r}")
    sink: dict[str, Any] = {"webhook": _robot_url(o, url, ["access_token"]), "msgType": msg_type,
                            "secret": o.one("sign"), "atMobiles": o.items("at_mobiles"),
                            "isAtAll": o.flag("is_at_all"),
                            "template": _label_template(o, msg_type == "markdown")}
    if (cluster := o.one("cluster_id")) and msg_type == "markdown":
        sink["title"] = f"Kubernetes(ID:{{{{ `{cluster.replace('`', '')}` }}}}) Event"
    drop = {"reason": anchored(excluded)} if (excluded := o.items("exclude_reasons")) else {}
    return replace(flag, sink={"dingtalk": sink}, drop=drop)


def _wechat(o: Options, url: SplitResult, flag: SinkFlag) -> SinkFlag:
    app = [key for key in _WECHAT_APP if key in o.opts]
    if app or not url.netloc:
        raise o.error(app[0] if app else "corp_id", (
            "kube-eventer's wechat sink sends through the WeCom app API (corp_id, corp_secret, "
            "agent_id, to_user); eventpipe's wecom receiver posts to a WeCom group robot. Add "
            "a robot to the group and use --sink 'wechat:https://qyapi.weixin.qq.com/cgi-bin/"
            "webhook/send?key=KEY&level=Warning' (label, level, namespaces, kinds still work)"))
    if not o.one("key"):
        raise o.error("key", "required: the WeCom group robot's key")
    sink = {"webhook": _robot_url(o, url, ["key"]), "template": _label_template(o, False)}
    return replace(flag, sink={"wecom": sink})


def _webhook(o: Options, url: SplitResult, flag: SinkFlag) -> SinkFlag:
    if not url.netloc:
        raise SinkFlagError(f"{o.label}: give the endpoint: webhook:https://HOST/PATH?OPTIONS")
    method = o.one("method", "POST").upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise o.error("method", f"eventpipe sends a body with POST, PUT or PATCH, not {method}; "
                                "use method=POST")
    headers: dict[str, str] = {}
    content_type = "application/json"
    for header in o.all("header"):
        name, eq, value = header.partition("=")
        if not eq or not name:
            raise o.error("header", "expected header=Name=Value")
        if name.lower() == "content-type":
            content_type = value
        else:
            headers[name] = value
    rest = [(k, v) for k, values in o.opts.items() if k not in o.used | {"custom_body_file",
            "custom_body_configmap", "custom_body_configmap_namespace"} for v in values]
    o.used.update(k for k, _ in rest)  # not options: they belong to the endpoint's URL
    endpoint = urlunsplit((url.scheme, url.netloc, url.path, urlencode(rest), ""))
    sink = {"endpoint": endpoint, "method": method, "headers": headers,
            "contentType": content_type, "layout": dict(DEFAULT_WEBHOOK_BODY)}
    configmap = None
    if path := o.one("custom_body_file"):
        try:
            sink["layout"] = body_layout(o.read_file(path), o.label, f"custom_body_file {path}")
        except OSError as exc:
            raise o.error("custom_body_file", f"cannot read {path}: {exc.strerror}") from None
    if name := o.one("custom_body_configmap"):
        if path:
            raise o.error("custom_body_configmap", "give it or custom_body_file, not both")
        configmap = (o.one("custom_body_configmap_namespace", "default"), name)
    elif o.all("custom_body_configmap_namespace"):
        raise o.error("custom_body_configmap_namespace", "needs custom_body_configmap")
    return replace(flag, sink={"webhook": sink}, configmap=configmap)


def body_layout(text: str, label: str, where: str) -> Any:
    """kube-eventer's body template as a webhook layout: JSON whose strings are templates."""
    try:
        layout = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SinkFlagError(
            f"{label}: {where}: the body template is not JSON with the templates inside string "
            f"values ({exc.msg} at line {exc.lineno}); eventpipe renders a webhook body as a "
            "JSON map whose string leaves are Go templates. Rewrite it that way (it then needs "
            "no quote stripping), or use a config file with `layout:`") from None
    if not isinstance(layout, dict | list):
        raise SinkFlagError(f"{label}: {where}: the body must be a JSON object or array")
    return layout


def _kafka(o: Options, _url: SplitResult, flag: SinkFlag) -> SinkFlag:
    brokers = o.items("brokers")
    if not brokers:
        raise o.error("brokers", "required: brokers=host:port (repeat it for more brokers)")
    codec = o.one("compression", "none")
    if codec not in ("none", "gzip", "snappy", "lz4"):
        raise o.error("compression", f"expected none, gzip, snappy or lz4, got {codec!r}")
    sink: dict[str, Any] = {"brokers": brokers, "topic": o.one("eventstopic", "heapster-events"),
                            "compressionCodec": codec, "clientId": "kafka-sink",
                            "layout": dict(KAFKA_ENVELOPE)}
    user, password = o.one("user"), o.one("password")
    if bool(user) != bool(password):
        raise o.error("user" if password else "password", "set both user and password")
    if user:
        sink["sasl"] = {"enable": True, "username": user, "password": password,
                        "mechanism": "plain"}
    ca, cert, key = o.one("cacert"), o.one("cert"), o.one("key")
    if bool(cert) != bool(key):
        raise o.error("cert" if key else "key", "set both cert and key (client TLS)")
    insecure = o.flag("insecuressl")
    if ca or cert or insecure:
        sink["tls"] = {"enable": True, "caFile": ca, "certFile": cert, "keyFile": key,
                       "insecureSkipVerify": insecure}
    return replace(flag, sink={"kafka": sink})


def _elasticsearch(o: Options, url: SplitResult, flag: SinkFlag) -> SinkFlag:
    hosts = o.all("nodes") or ([f"{url.scheme}://{url.netloc}"] if url.netloc else [])
    if not hosts:
        raise o.error("nodes", "required: elasticsearch:http://HOST:9200 or ?nodes=URL")
    version = o.one("ver", "5")
    if version not in ("2", "5", "6", "7", "8"):
        raise o.error("ver", f"expected 2, 5, 6, 7 or 8, got {version!r}")
    user, secret = o.one("esUserName"), o.one("esUserSecret")
    if bool(user) != bool(secret):
        raise o.error("esUserSecret" if user else "esUserName", "set both esUserName and "
                      "esUserSecret")
    for key, why in (("pipeline", "ingest pipelines are not supported; remove it, or set a "
                                  "default pipeline on the index"),
                     ("cluster_name", "EventTags are not written; set clusterName in a "
                                      "--config file instead")):
        if o.all(key):
            raise o.error(key, why)
    # kube-eventer turns it on when present at all, whatever the value.
    by_namespace = "use_namespace" in o.opts and o.one("use_namespace") not in ("false", "0")
    namespace = "{{ .Namespace }}-" if by_namespace else ""
    sink = {"hosts": hosts, "username": user, "password": secret,
            "indexFormat": f"{o.one('index', 'heapster')}-{namespace}{{2006.01.02}}",
            "type": "events" if int(version) < 7 else ""}
    return replace(flag, sink={"elasticsearch": sink})


Mapper = Callable[[Options, SplitResult, SinkFlag], SinkFlag]

MAPPERS: Mapping[str, Mapper] = {"dingtalk": _dingtalk, "wechat": _wechat, "webhook": _webhook,
                                 "kafka": _kafka, "elasticsearch": _elasticsearch}
"""kube-eventer sink name -> the function that maps its options."""
