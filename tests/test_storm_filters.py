"""Per-receiver `filters:` (kube-eventer semantics) and the storm config keys."""

from __future__ import annotations

import textwrap
from typing import Any

import orjson
import pytest

from eventpipe.config import ConfigError, load_config_text
from eventpipe.delivery.config import FiltersConfig
from eventpipe.delivery.driver import Delivery
from eventpipe.delivery.filters import EventFilter, compile_filters
from eventpipe.delivery.settings import delivery_settings
from eventpipe.metrics import Metrics
from eventpipe.spool.rows import StoredRow
from eventpipe.watch.normalize import to_record
from tests.test_driver import MemorySink

CONFIG = """
route:
  routes:
    - match:
        - receiver: bot
receivers:
  - name: bot
    stdout: {}
    filters:
      level: Warning
      namespaces: [prod, payments]
      kinds: [Pod]
      reasons: ["^BackOff$", "Failed"]
    throttle:
      window: 10m
      key: [namespace, reason]
    rateLimit:
      perMinute: 20
"""


def stored(seq: int, *, namespace: str = "prod", kind: str = "Pod", reason: str = "BackOff",
           type_: str = "Warning", events_v1: bool = False) -> StoredRow:
    obj: dict[str, Any] = {"metadata": {"uid": f"u{seq}", "resourceVersion": str(seq),
                                        "namespace": namespace},
                           "reason": reason, "type": type_}
    obj["regarding" if events_v1 else "involvedObject"] = {"kind": kind, "name": "x"}
    record = to_record(obj, orjson.dumps(obj))
    return StoredRow(seq=seq, observed_at=0.0, count_delta=1,
                     **record._replace(event_time=None)._asdict())


def load(text: str) -> Any:
    return load_config_text(textwrap.dedent(text), source="config.yaml", environ={})


def test_storm_keys_load_into_the_driver_settings() -> None:
    receiver = load(CONFIG).receivers[0]
    settings = delivery_settings(receiver)
    assert settings.throttle_window == 600.0
    assert settings.throttle_key == ("namespace", "reason")
    assert settings.rate_per_minute == 20
    assert isinstance(settings.filters, EventFilter)
    # Defaults: no storm control unless asked; the default key is object + reason.
    plain = delivery_settings(load(CONFIG.split("    filters:")[0]).receivers[0])
    assert (plain.throttle_window, plain.rate_per_minute, plain.filters) == (0.0, 0, None)
    assert plain.throttle_key == ("cluster", "namespace", "kind", "name", "reason")


def test_a_bad_reason_regex_is_a_startup_error_naming_the_receiver_key() -> None:
    with pytest.raises(ConfigError) as info:
        load(CONFIG.replace('"Failed"', '"Fail(ed"'))
    message = str(info.value)
    assert "receivers[0].filters.reasons[1]" in message and "Fail(ed" in message
    assert message.startswith("config.yaml:13:")  # the reasons line


@pytest.mark.parametrize(("body", "error"), [
    ("throttle: {window: 0s}", "greater than 0"),
    ("throttle: {key: [pod]}", "receivers[0].throttle.key[0]"),
    ("rateLimit: {perMinute: 0}", "receivers[0].rateLimit.perMinute"),
    ("filters: {level: Error}", "receivers[0].filters.level"),
    ("filters: {reason: x}", "receivers[0].filters: unknown key 'reason'"),
])
def test_storm_keys_are_validated(body: str, error: str) -> None:
    text = CONFIG.split("    filters:")[0] + "    " + body + "\n"
    with pytest.raises(ConfigError) as info:
        load(text)
    assert error in str(info.value)


def test_kube_eventer_level_semantics() -> None:
    warning = EventFilter(FiltersConfig(level="Warning"), receiver="bot")
    normal = compile_filters(FiltersConfig(level="Normal"), receiver="bot")
    assert warning(stored(1)) and not warning(stored(2, type_="Normal"))
    assert normal is None  # Normal passes everything: no check at all
    assert compile_filters(None, receiver="bot") is None


def test_namespaces_kinds_and_reason_regexes_all_apply() -> None:
    check = EventFilter(FiltersConfig(namespaces=["prod"], kinds=["Pod", "Node"],
                                      reasons=["^Back", "Unhealthy$"]), receiver="bot")
    assert check(stored(1)) and check(stored(2, kind="Node", reason="NodeUnhealthy"))
    assert not check(stored(3, namespace="dev"))
    assert not check(stored(4, kind="Deployment"))
    assert not check(stored(5, reason="Pulled"))
    assert not check(stored(6, reason="ImageBackOff"))  # unanchored, but ^ anchors
    assert check(stored(7, kind="Node", reason="NodeUnhealthy", events_v1=True))


def test_the_driver_drops_filtered_events_before_encoding() -> None:
    receiver = load(CONFIG).receivers[0]
    delivery = Delivery(MemorySink("bot"), router=None, settings=delivery_settings(receiver),
                        metrics=Metrics())
    rows = [stored(1), stored(2, type_="Normal"), stored(3, namespace="dev"),
            stored(4, reason="FailedMount"), stored(5, kind="Pod", namespace="payments")]
    payloads, kept, dead = delivery.encode(rows)
    assert [row[0] for row in kept] == [1, 4, 5] and not dead and len(payloads) == 3
    assert [row[0] for row in delivery.selected(rows)] == [1, 4, 5]
    # Dead-letter replay (route=False) re-sends what was chosen before, unfiltered.
    assert len(delivery.encode(rows, route=False)[0]) == 5
