"""The kube-eventer guides' pieces, verbatim: the Deployment's command and flags, the WeCom
body template and the Bark variant kept in the `custom-webhook-body` ConfigMap, and the RBAC
the guides grant. Shared by the fake-API tests and the real-control-plane tier."""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_FLAG = "--source=kubernetes:https://kubernetes.default.svc.cluster.local"

WECOM_BODY = """\
{
   "msgtype": "text",
   "text": {
      "content": "集群事件告警\\n事件级别: {{ .Type }}\\n名称空间: {{ .InvolvedObject.Namespace }}\\n事件类型: {{ .InvolvedObject.Kind }}\\n事件对象: {{ .InvolvedObject.Name }}\\n事件原因: {{ .Reason }}\\n发生时间: {{ .LastTimestamp }}\\n详细信息: {{ .Message }}"
   }
}
"""  # noqa: E501

BARK_BODY = """\
{
  "title": "{{ .InvolvedObject.Name }}",
  "icon": "https://kubernetes.io/images/favicon.png",
  "body": "{{ . }}"
}
"""

GUIDE_RULES = [
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
]
"""The ClusterRole kube-eventer's guides grant (events, and the body's ConfigMap)."""


def sink_flag(endpoint: str) -> str:
    """The guide's WeCom `--sink`, its host (qyapi.weixin.qq.com) replaced by `endpoint`."""
    return (f"--sink=webhook:{endpoint}/cgi-bin/webhook/send?key=KEY&level=Warning"
            "&header=Content-Type=application/json&custom_body_configmap=custom-webhook-body"
            "&custom_body_configmap_namespace=monitoring&method=POST")


def kube_eventer_binary(directory: Path) -> Path:
    """`/kube-eventer` as the image has it: a link to the `eventpipe` command."""
    link = directory / "kube-eventer"
    link.symlink_to(Path(sys.executable).parent / "eventpipe")
    return link
