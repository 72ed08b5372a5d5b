"""`eventpipe config validate`, `eventpipe run` and `eventpipe config schema` as real commands:
a bad config stops startup with exit code 1 and a message that says where and what; the printed
JSON Schema is a valid schema that accepts the example configs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from eventpipe.config import load_config
from eventpipe.config.sinks import RESMO_SINK_TYPES, SINK_MODELS
from tests.pipeline_harness import REPO, run_cli

UNKNOWN_KEY = """\
logLevel: info
route:
  routes:
    - match:
        - receiver: dump
receivers:
  - name: dump
    file:
      path: {tmp}/out.jsonl
      maxsizee: 3
"""
BAD_REGEX = """\
route:
  routes:
    - match:
        - receiver: dump
          reason: "Back(Off"
receivers:
  - name: dump
    file:
      path: {tmp}/out.jsonl
"""
# A resmo receiver type eventpipe does not implement (loki was one until it was implemented).
UNSUPPORTED = "sns" if "sns" not in SINK_MODELS else sorted(RESMO_SINK_TYPES - set(SINK_MODELS))[0]
NOT_YET = f"""\
receivers:
  - name: logs
    {UNSUPPORTED}:
      topicARN: arn:aws:sns:eu-west-1:1234:events
"""
BAD_LAYOUT = """\
spool:
  path: {tmp}/spool.db
receivers:
  - name: pretty
    file:
      path: {tmp}/out.jsonl
      layout:
        msg: "{{{{ .Message "
"""

# (config text, what stderr must say)
CASES = {
    "unknown-key": (UNKNOWN_KEY, ["unknown-key.yaml:10:", "receivers[0].file",
                                  "unknown key 'maxsizee'"]),
    "bad-regex": (BAD_REGEX, ["bad-regex.yaml:5:", "route.routes[0].match[0].reason",
                              "Back(Off"]),
    "not-yet": (NOT_YET, ["not-yet.yaml:3:", "'logs'",
                          f"'{UNSUPPORTED}' is not supported yet"]),
    "bad-layout": (BAD_LAYOUT, ["bad-layout.yaml", "receivers.pretty.layout.msg",
                                "unclosed action"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_config_stops_validate_and_run(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text.format(tmp=tmp_path))
    validate, run = await asyncio.gather(run_cli("config", "validate", str(path)),
                                         run_cli("run", "--config", str(path), within=20))
    # `config validate` reports a finding (1); `run` cannot start (2, docs/exit-codes.md).
    for result, code in ((validate, 1), (run, 2)):
        assert result.code == code, result
        assert result.stderr.startswith("Error: invalid config:"), result.stderr
        for fragment in expected:
            assert fragment in result.stderr, (fragment, result.stderr)
        assert "Traceback" not in result.stderr
    # Startup stopped before anything was created.
    assert not (tmp_path / "spool.db").exists()
    assert not (tmp_path / "out.jsonl").exists()


async def test_valid_config_validates(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BAD_REGEX.replace("Back(Off", "Back(Off|Failed)").format(tmp=tmp_path))
    result = await run_cli("config", "validate", str(path))
    assert (result.code, result.stdout.strip()) == (0, f"{path}: ok (1 receivers)")


EXAMPLE = """\
logLevel: debug
logFormat: json
clusterName: prod-eu-1
namespace: ""
maxEventAgeSeconds: 60
kubeQPS: 60
kubeBurst: 60
metricsNamePrefix: event_exporter_
route:
  drop:
    - namespace: "kube-system"
    - type: "Normal"
      reason: "Pulled|Created|Started"
  match:
    - receiver: dump
  routes:
    - match:
        - receiver: warnings
          type: Warning
          labels:
            team: payments
          minCount: 5
receivers:
  - name: dump
    file:
      path: /var/log/eventpipe/events.jsonl
      maxsize: 100
      maxbackups: 3
      layout:
        message: "{{ .Message }}"
        reason: "{{ .Reason }}"
        object: "{{ .InvolvedObject.Kind }}/{{ .InvolvedObject.Name }}"
    retry:
      initialBackoff: 1s
      maxBackoff: 5m
    batch:
      maxEvents: 200
      maxWait: 500ms
  - name: warnings
    stdout:
      deDot: true
spool:
  path: /var/lib/eventpipe/spool.db
  historyWindow: 7d
  maxBytes: 2Gi
  whenFull: dropOldest
watch:
  apiGroup: events.k8s.io
  namespaces: [team-a, team-b]
http:
  port: 2112
shutdownTimeout: 25s
"""


async def test_schema_is_valid_json_schema_and_accepts_the_examples(tmp_path: Path) -> None:
    (tmp_path / "example.yaml").write_text(EXAMPLE)
    load_config(tmp_path / "example.yaml")  # the inline example is a config eventpipe takes
    result = await run_cli("config", "schema")
    assert result.code == 0, result.stderr
    schema = orjson.loads(result.stdout)
    validator_class = jsonschema.validators.validator_for(schema)
    assert validator_class is jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    examples = {"inline": yaml.safe_load(EXAMPLE)}
    for path in sorted((REPO / "examples").glob("*.yaml")):
        examples[path.name] = yaml.safe_load(path.read_text())
    for name, doc in examples.items():
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, f"{name}: {errors}"
    # And it is not a schema that accepts anything: typos and bad values are refused.
    typo = yaml.safe_load(EXAMPLE.replace("historyWindow", "historyWindw"))
    assert not validator.is_valid(typo)
    two_sinks = yaml.safe_load(EXAMPLE)
    two_sinks["receivers"][1]["file"] = {"path": "/tmp/x"}
    assert not validator.is_valid(two_sinks)
    wrong_policy = yaml.safe_load(EXAMPLE.replace("whenFull: dropOldest", "whenFull: panic"))
    assert not validator.is_valid(wrong_policy)
