"""The config JSON Schema: valid JSON Schema, documented, and in agreement with the loader."""

from __future__ import annotations

import textwrap
from typing import Any

import jsonschema
import pytest
import yaml

from eventpipe.config import ConfigError, config_json_schema, load_config_text


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return config_json_schema()


def test_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


def _objects(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("<root>", schema)]
    found += list(schema.get("$defs", {}).items())
    return found


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    missing = [
        f"{name}.{prop}"
        for name, obj in _objects(schema)
        for prop, spec in obj.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == []
    # And the models themselves are described.
    assert all(obj.get("description") for _, obj in _objects(schema))


def test_schema_uses_yaml_key_names(schema: dict[str, Any]) -> None:
    top = schema["properties"]
    for key in ("logLevel", "maxEventAgeSeconds", "kubeQPS", "metricsNamePrefix", "spool",
                "watch", "http", "shutdownTimeout", "leaderElection", "throttlePeriod"):
        assert key in top
    assert "leaderElectionID" in schema["$defs"]["LeaderElectionConfig"]["properties"]
    assert "maxsize" in schema["$defs"]["FileSinkConfig"]["properties"]
    assert schema["additionalProperties"] is False


def test_durations_accept_strings_and_numbers(schema: dict[str, Any]) -> None:
    window = schema["$defs"]["SpoolConfig"]["properties"]["historyWindow"]
    types = {branch.get("type") for branch in window["anyOf"]}
    assert {"string", "number"} <= types


GOOD = [
    """
    logLevel: error
    route:
      routes:
        - match: [{receiver: dump}]
        - drop: [{type: Normal}]
          match: [{kind: "Pod", minCount: 3, labels: {app: web}, receiver: alerts}]
    receivers:
      - name: dump
        stdout: {deDot: true}
      - name: alerts
        file: {path: /tmp/x, maxsize: 10, layout: {msg: "{{ .Message }}"}}
        retry: {initialBackoff: 1s, maxAttempts: 3}
        batch: {maxEvents: 10, maxWait: 0.5}
    spool: {maxBytes: 2Gi, historyWindow: 7d}
    watch: {namespaces: [a, b], apiGroup: events.k8s.io}
    """,
    "{}",
]

BAD = [
    "logLevl: info",
    "receivers: [{name: a}]",
    "receivers: [{name: a, stdout: {}, file: {path: /x}}]",
    "receivers: [{name: a, file: {}}]",
    "spool: {whenFull: sometimes}",
    "http: {port: 70000}",
]


@pytest.mark.parametrize("text", GOOD)
def test_schema_accepts_what_the_loader_accepts(schema: dict[str, Any], text: str) -> None:
    text = textwrap.dedent(text)
    load_config_text(text)
    jsonschema.validate(yaml.safe_load(text), schema)


@pytest.mark.parametrize("text", BAD)
def test_schema_rejects_what_the_loader_rejects(schema: dict[str, Any], text: str) -> None:
    with pytest.raises(ConfigError):
        load_config_text(text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), schema)
