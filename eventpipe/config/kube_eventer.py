"""kube-eventer's `--sink=KIND:URL?options` flags, mapped onto eventpipe receivers and routes.

AliyunContainerService/kube-eventer is configured by flags only; this module turns each flag
into a receiver entry (a dict validated by the same `Receiver` model a config file uses) and a
route that sends to it, so `eventpipe run --sink '...'` works with the flags people already have.
Its per-sink filters (`level`, `namespaces`, `kinds`, `reason`, dingtalk's `exclude_reasons`)
become route rule regexes, anchored to the listed values where kube-eventer compares exactly.

Every option is either mapped, accepted because kube-eventer's own sink ignores it or eventpipe
always behaves that way (`kube_eventer_options._IGNORED`), or refused with a message naming
the sink, the option and what to do. A webhook URL keeps the query parameters that are not
options, as kube-eventer sends them on to the endpoint. Messages never echo a flag: its URL
usually carries a token. The per-sink mappings live in `kube_eventer_sinks`, the shared option
handling in `kube_eventer_options`; this module is the public surface `eventpipe run` uses. A
body kept in a ConfigMap (`custom_body_configmap`) is only named here; `eventpipe run` reads it
through the API (eventpipe.configmap_bodies) and hands it back to `with_configmap_body`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ValidationError

from eventpipe.config.kube_eventer_options import Options, SinkFlag, SinkFlagError
from eventpipe.config.kube_eventer_sinks import MAPPERS, body_layout
from eventpipe.config.loader import _to_config_error
from eventpipe.config.models import Config
from eventpipe.config.receivers import receiver_model, sink_keys_in
from eventpipe.core.errors import ConfigError
from eventpipe.core.yamlsource import YamlDocument
from eventpipe.routing.config import RouteConfig
from eventpipe.spool.config import SpoolConfig

if TYPE_CHECKING:
    from eventpipe.config.receivers import Receiver

DEFAULT_SPOOL = "./eventpipe-spool.db"
"""Spool file when `run` gets --sink without --config (else $EVENTPIPE_SPOOL)."""

KINDS = tuple(MAPPERS)
"""kube-eventer sinks eventpipe maps."""

__all__ = ["DEFAULT_SPOOL", "KINDS", "SinkFlag", "SinkFlagError", "apply_sink_flags",
           "parse_sink_flag", "parse_source_flag", "validate_receiver", "with_configmap_body"]

_SOURCE_OPTIONS = frozenset({"inClusterConfig", "auth", "useServiceAccount", "insecure",
                             "kubeletPort", "kubeletHttps", "apiVersion"})
"""kube-eventer's `--source=kubernetes:URL?...` options (heapster's kube_config.go)."""


def parse_source_flag(text: str) -> str | None:
    """kube-eventer's `--source`: the kubeconfig it names (`auth=PATH`), else None.

    eventpipe connects as kubectl does (--kubeconfig, $KUBECONFIG, ~/.kube/config, else the
    in-cluster service account), which reaches the API server the URL names in-cluster
    (`https://kubernetes.default...`), so the URL itself is not needed; the other options
    (`inClusterConfig`, `useServiceAccount`, `insecure`, kubelet settings) choose what that
    already chooses, and are accepted."""
    kind, sep, rest = text.partition(":")
    if kind != "kubernetes" or not sep:
        raise SinkFlagError(f"--source: expected kubernetes:URL (kube-eventer's only source), "
                            f"got {kind!r}")
    auth = None
    for key, value in parse_qsl(urlsplit(rest).query, keep_blank_values=True):
        if key not in _SOURCE_OPTIONS:
            raise SinkFlagError(f"--source: option {key!r} is not a kube-eventer source "
                                f"option (known: {', '.join(sorted(_SOURCE_OPTIONS))})")
        if key == "auth" and value:
            auth = value
    return auth


def parse_sink_flag(text: str, *, index: int = 1,
                    read_file: Callable[[str], str] | None = None) -> SinkFlag:
    """Map one kube-eventer `--sink` value; raise SinkFlagError saying what to change."""
    kind, sep, rest = text.partition(":")
    label = f"--sink #{index} ({kind})"
    if not sep or kind not in KINDS:
        raise SinkFlagError(f"--sink #{index}: expected KIND:URL with KIND one of "
                            f"{', '.join(KINDS)}, got {kind!r}")
    url = urlsplit(rest)
    opts: dict[str, list[str]] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        opts.setdefault(key, []).append(value)
    options = Options(label, kind, opts,
                      read_file or (lambda path: Path(path).read_text(encoding="utf-8")))
    flag = MAPPERS[kind](options, url, SinkFlag(kind, label, {}, options.filters()))
    options.check_all_used()
    if flag.configmap is None:
        validate_receiver(flag)
    return flag


def _validated(model: type[BaseModel], data: dict[str, Any], label: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error: ConfigError = _to_config_error(exc, YamlDocument(data, {}), label)
        raise SinkFlagError(str(error)) from None


def validate_receiver(flag: SinkFlag, name: str = "kube-eventer") -> Receiver:
    """The flag's receiver through the config model; errors read as a config file's do."""
    entry = {"name": name, **flag.sink}
    receiver: Receiver = _validated(receiver_model(sink_keys_in([entry])), entry, flag.label)
    return receiver


def with_configmap_body(flag: SinkFlag, content: str | None) -> SinkFlag:
    """`flag` with its webhook layout taken from the ConfigMap's `content` (None: missing)."""
    if flag.configmap is None:
        return flag
    namespace, name = flag.configmap
    if content is None:
        raise SinkFlagError(f"{flag.label}: ConfigMap {namespace}/{name} has no `content` key")
    layout = body_layout(content, flag.label, f"ConfigMap {namespace}/{name}")
    flag = replace(flag, sink={"webhook": {**flag.sink["webhook"], "layout": layout}},
                   configmap=None)
    validate_receiver(flag)
    return flag


def apply_sink_flags(config: Config | None, flags: Sequence[SinkFlag], *,
                     environ: Mapping[str, str]) -> Config:
    """`config` (or a default one) plus one receiver and one route per flag.

    The config's own route tree becomes the first sub-route of a new root, so its drop and
    match rules keep their meaning and do not filter the --sink receivers.
    """
    if config is None:
        spool = environ.get("EVENTPIPE_SPOOL") or DEFAULT_SPOOL
        config = Config(spool=SpoolConfig(path=spool))
    taken = {receiver.name for receiver in config.receivers}
    receivers = list(config.receivers)
    routes = [config.route] if config.route != RouteConfig() else []
    for flag in flags:
        name, n = f"kube-eventer-{flag.kind}", 1
        while name in taken:
            n += 1
            name = f"kube-eventer-{flag.kind}-{n}"
        taken.add(name)
        receivers.append(validate_receiver(flag, name))
        route = {"drop": [flag.drop] if flag.drop else [],
                 "match": [{**flag.match, "receiver": name}]}
        routes.append(_validated(RouteConfig, route, flag.label))
    return config.model_copy(update={"receivers": receivers,
                                     "route": RouteConfig(routes=routes)})
