"""Loading config files: resmo compatibility, defaults, ${ENV}, and errors that say where."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from eventpipe import __version__
from eventpipe.config import (
    Config,
    ConfigError,
    FileSinkConfig,
    StdoutSinkConfig,
    load_config,
    load_config_text,
)
from eventpipe.config.sinks import SINK_MODELS


def cfg(text: str, **env: str) -> Config:
    return load_config_text(textwrap.dedent(text), source="config.yaml", environ=env)


def error(text: str, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg(text, **env)
    return info.value


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle` in the dedented text."""
    for number, line in enumerate(textwrap.dedent(text).splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


# --- resmo configs load unchanged ------------------------------------------------------------

RESMO_CHART_CONFIG = """
logLevel: error
logFormat: json
route:
  routes:
    - match:
        - receiver: "dump"
receivers:
  - name: "dump"
    stdout: {}
"""

README_STDOUT = """
logLevel: error
logFormat: json
maxEventAgeSeconds: 5
route:
  routes:
    - match:
        - receiver: "dump"
receivers:
  - name: "dump"
    stdout:
      deDot: true
"""

README_FILE = """
receivers:
  - name: "file"
    file:
      path: "/tmp/dump"
      layout: # Optional
"""

README_ROUTE = """
route:
  # Main route
  routes:
    # This route allows dumping all events because it has no fields to match and no drop rules.
    - match:
        - receiver: dump
    # This starts another route, drops all the events in *test* namespaces and Normal events
    # for capturing critical events
    - drop:
        - namespace: "*test*"
        - type: "Normal"
      match:
        - receiver: "critical-events-queue"
    # This a final route for user messages
    - match:
        - kind: "Pod|Deployment|ReplicaSet"
          labels:
            version: "dev"
          receiver: "slack"
receivers:
  - name: dump
    stdout: {}
  - name: critical-events-queue
    file:
      path: /var/log/critical.json
  - name: slack
    stdout: {}
"""


def test_resmo_chart_config_loads() -> None:
    config = cfg(RESMO_CHART_CONFIG)
    assert config.log_level == "error"
    assert config.log_format == "json"
    [receiver] = config.receivers
    assert receiver.name == "dump"
    assert receiver.sink_type == "stdout"
    assert isinstance(receiver.sink, StdoutSinkConfig)


def test_readme_stdout_example_loads() -> None:
    config = cfg(README_STDOUT)
    assert config.max_event_age_seconds == 5
    sink = config.receivers[0].sink
    assert isinstance(sink, StdoutSinkConfig) and sink.de_dot is True


def test_readme_file_example_loads_with_null_layout() -> None:
    sink = cfg(README_FILE).receivers[0].sink
    assert isinstance(sink, FileSinkConfig)
    assert sink.path == "/tmp/dump"
    assert sink.layout is None
    assert (sink.max_size, sink.max_age, sink.max_backups) == (0, 0, 0)


def test_readme_route_example_rejects_glob_that_is_not_a_regex() -> None:
    # "*test*" is not a valid regex in Go either; resmo silently never matched it. eventpipe
    # refuses to start (docs/migrating.md) and says which rule, field and pattern.
    err = error(README_ROUTE)
    assert err.line == line_of(README_ROUTE, '"*test*"')
    assert err.path == "route.routes[1].drop[0].namespace"
    assert "'*test*'" in str(err)
    assert str(err).startswith(f"config.yaml:{err.line}: route.routes[1].drop[0].namespace: ")


def test_readme_route_example_loads_with_a_real_regex() -> None:
    config = cfg(README_ROUTE.replace('"*test*"', '".*test.*"'))
    assert [r.name for r in config.receivers] == ["dump", "critical-events-queue", "slack"]
    assert config.route.routes[2].match[0].labels == {"version": "dev"}


# Receiver snippets from resmo's README, as written there (placeholders `true|false` -> true).
README_RECEIVERS = {
    "opsgenie": """
      apiKey: xxx
      priority: "P3"
      message: "Event {{ .Reason }} for {{ .InvolvedObject.Namespace }}/{{ .InvolvedObject.Name }}"
      alias: "{{ .UID }}"
      description: "<pre>{{ toPrettyJson . }}</pre>"
      tags: ["event", "{{ .Reason }}"]
""",
    "webhook": """
      endpoint: "https://my-super-secret-service.com"
      headers:
        X-API-KEY: "123"
        User-Agent: kube-event-exporter 1.0
      layout: # Optional
""",
    "elasticsearch": """
      hosts: [http://localhost:9200]
      index: kube-events
      indexFormat: "kube-events-{2006-01-02}"
      useEventID: true
      deDot: true
      tls: {insecureSkipVerify: true}
""",
    "opensearch": """
      hosts: [http://localhost:9200]
      index: kube-events
""",
    "slack": """
      token: YOUR-API-TOKEN-HERE
      channel: "@{{ .InvolvedObject.Labels.owner }}"
      message: "{{ .Message }}"
      fields: {namespace: "{{ .Namespace }}"}
""",
    "kinesis": """
      streamName: "events-pipeline"
      region: us-west-2
""",
    "firehose": """
      deliveryStreamName: "events-pipeline"
      region: us-west-2
""",
    "sns": """
      topicARN: "arn:aws:sns:us-east-1:1234567890123456:mytopic"
      region: "us-west-2"
""",
    "sqs": """
      queueName: "/tmp/dump"
      region: us-west-2
""",
    "kafka": """
      clientId: "kubernetes"
      topic: "kube-event"
      brokers: ["localhost:9092"]
      compressionCodec: "snappy"
      tls: {enable: true, certFile: "kafka-client.crt"}
      sasl: {enable: true, username: "u", password: "p", mechanism: "sha512"}
""",
    "pubsub": """
      gcloud_project_id: "my-project"
      topic: "kube-event"
      create_topic: False
""",
    "teams": """
      endpoint: "https://outlook.office.com/webhook/..."
""",
    "syslog": """
      network: "tcp"
      address: "127.0.0.1:11514"
      tag: "k8s.event"
""",
    "bigquery": """
      location:
      project:
""",
    "pipe": """
      path: "/dev/stdout"
      deDot: true
""",
    "eventbridge": """
      detailType: "deployment"
      source: "cd"
""",
    "loki": """
      headers: {X-Scope-OrgID: tennantID}
      streamLabels: {foo: bar}
      url: http://127.0.0.1:3100/loki/api/v1/push
""",
}


@pytest.mark.parametrize("sink", sorted(k for k in README_RECEIVERS if k not in SINK_MODELS))
def test_resmo_sinks_not_implemented_yet_get_a_clear_error(sink: str) -> None:
    text = (
        "route:\n  routes:\n    - match:\n        - receiver: dump\n"
        "receivers:\n  - name: dump\n    stdout: {}\n"
        f"  - name: alerts\n    {sink}:{README_RECEIVERS[sink]}"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="config.yaml")
    line = text.splitlines().index(f"    {sink}:") + 1
    assert str(info.value) == (
        f"config.yaml:{line}: receivers[1] 'alerts': receiver type '{sink}' "
        f"is not supported yet by eventpipe {__version__}"
    )


# --- defaults and eventpipe sections ---------------------------------------------------------


def test_empty_mapping_gives_documented_defaults() -> None:
    config = cfg("{}")
    assert config.log_level == "info" and config.log_format == "json"
    assert config.cluster_name == "" and config.namespace == ""
    assert config.max_event_age_seconds == 0
    assert config.metrics_name_prefix == "event_exporter_"
    assert config.cache_size == 1024 and config.omit_lookup is False
    assert config.leader_election.enabled is False
    assert config.receivers == [] and config.route.routes == []
    spool = config.spool
    assert spool.path == "/var/lib/eventpipe/spool.db"
    assert spool.history_window == 7 * 86400
    assert spool.max_bytes is None and spool.when_full == "block"
    assert spool.synchronous == "FULL"
    assert (spool.batch_max_events, spool.batch_max_wait) == (500, 0.05)
    assert spool.retention_interval == 60
    watch = config.watch
    assert watch.api_group == "core" and watch.namespaces == []
    assert (watch.timeout_min, watch.timeout_max, watch.page_size) == (300, 600, 500)
    assert (watch.backoff_initial, watch.backoff_max) == (0.8, 30)
    assert (config.http.address, config.http.port) == ("0.0.0.0", 2112)
    assert config.shutdown_timeout == 25
    assert config.watch_namespaces == ()


def test_eventpipe_sections_parse_units() -> None:
    config = cfg("""
        namespace: team-a
        leaderElection: {enabled: true, leaderElectionID: my-lease}
        kubeQPS: 100
        kubeBurst: 500
        cacheSize: 0
        throttlePeriod: 10
        spool: {maxBytes: 2Gi, historyWindow: 1h30m, whenFull: dropOldest, synchronous: normal,
                batchMaxWait: 20ms}
        watch: {apiGroup: events.k8s.io, namespaces: [team-b, team-a], timeoutMin: 1m,
                timeoutMax: 2m}
        http: {port: 9000}
        shutdownTimeout: 1m
        receivers:
          - name: out
            stdout: {}
            retry: {initialBackoff: 1s, maxBackoff: 1h, maxAttempts: 5}
            batch: {maxEvents: 10, maxWait: 250ms}
    """)
    assert config.leader_election.leader_election_id == "my-lease"
    assert (config.kube_qps, config.kube_burst, config.cache_size) == (100.0, 500, 1024)
    assert config.throttle_period == 10
    assert config.spool.max_bytes == 2 * 1024**3
    assert config.spool.history_window == 5400
    assert config.spool.when_full == "dropOldest" and config.spool.synchronous == "NORMAL"
    assert config.spool.batch_max_wait == pytest.approx(0.02)
    assert config.watch.api_group == "events.k8s.io"
    assert config.watch_namespaces == ("team-b", "team-a")
    assert (config.watch.timeout_min, config.watch.timeout_max) == (60, 120)
    assert config.http.port == 9000 and config.shutdown_timeout == 60
    receiver = config.receivers[0]
    assert (receiver.retry.initial_backoff, receiver.retry.max_backoff) == (1, 3600)
    assert receiver.retry.max_attempts == 5
    assert (receiver.batch.max_events, receiver.batch.max_wait) == (10, 0.25)


def test_receiver_policy_defaults() -> None:
    receiver = cfg("receivers: [{name: a, file: {path: /x}}]").receivers[0]
    assert (receiver.retry.initial_backoff, receiver.retry.max_backoff) == (0.5, 30)
    assert receiver.retry.max_attempts == 0
    assert (receiver.batch.max_events, receiver.batch.max_wait) == (500, 1.0)


@pytest.mark.parametrize(("given", "level"), [("trace", "debug"), ("WARN", "warn"),
                                              ("warning", "warn"), ("fatal", "error"),
                                              ("panic", "error"), ("Info", "info")])
def test_resmo_log_levels_map_to_ours(given: str, level: str) -> None:
    assert cfg(f"logLevel: {given}").log_level == level


def test_layout_is_kept_as_raw_objects() -> None:
    config = cfg("""
        receivers:
          - name: f
            file:
              path: /tmp/x
              layout:
                kind: "{{ .InvolvedObject.Kind }}"
                details: {count: "{{ .Count }}", tags: ["a", "{{ .Reason }}"]}
          - name: s
            stdout: {layout: "{{ toJson . }}"}
    """)
    assert config.receivers[0].sink.layout == {  # type: ignore[attr-defined]
        "kind": "{{ .InvolvedObject.Kind }}",
        "details": {"count": "{{ .Count }}", "tags": ["a", "{{ .Reason }}"]},
    }
    assert config.receivers[1].sink.layout == "{{ toJson . }}"  # type: ignore[attr-defined]


def test_null_values_mean_defaults_and_numbers_become_strings() -> None:
    config = cfg("""
        clusterName:
        route:
          drop:
          match:
            - labels: {version: 2}
              receiver: 123
        receivers:
          - name: 123
            stdout:
    """)
    assert config.cluster_name == "" and config.route.drop == []
    assert config.route.match[0].labels == {"version": "2"}
    assert config.receivers[0].name == "123" and config.receivers[0].sink_type == "stdout"


# --- ${ENV} ---------------------------------------------------------------------------------


def test_env_expansion() -> None:
    config = cfg(
        """
        clusterName: ${CLUSTER}
        namespace: "${NS:-default-ns}"
        metricsNamePrefix: ${EMPTY:-ep_}
        http: {port: "${PORT}"}
        receivers:
          - name: ${NAME}-out   # ${NOT_SET_BUT_IN_A_COMMENT}
            file: {path: "/data/$${LITERAL}/${CLUSTER}.json"}
        """,
        CLUSTER="prod", PORT="9100", NAME="x", EMPTY="",
    )
    assert config.cluster_name == "prod"
    assert config.namespace == "default-ns"
    assert config.metrics_name_prefix == "ep_"
    assert config.http.port == 9100
    assert config.receivers[0].name == "x-out"
    assert config.receivers[0].sink.path == "/data/${LITERAL}/prod.json"  # type: ignore[attr-defined]


def test_env_value_cannot_change_yaml_structure() -> None:
    secret = "a#b: c\n- d"
    config = cfg("clusterName: ${SECRET}\n", SECRET=secret)
    assert config.cluster_name == secret


def test_unset_env_var_names_it_and_the_line() -> None:
    text = """
        logLevel: info
        receivers:
          - name: out
            file:
              path: /logs/${LOG_DIR}/events.json
    """
    err = error(text)
    assert err.line == line_of(text, "LOG_DIR")
    assert "'LOG_DIR'" in str(err) and "not set" in str(err)
    assert err.path == "receivers[0].file.path"


def test_env_in_anchored_value_expands_once() -> None:
    config = cfg("""
        clusterName: &c ${A}
        namespace: *c
    """, A="$${x}")
    assert config.cluster_name == "$${x}" and config.namespace == "$${x}"


# --- errors that say where -------------------------------------------------------------------


def test_wrong_type_message_matches_the_documented_form() -> None:
    text = "\n" * 5 + textwrap.dedent("""\
        route: {}
        receivers:
          - name: dump
            file:
              path: /tmp/x
              maxsize: big
    """)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="config.yaml")
    assert str(info.value) == (
        "config.yaml:11: receivers[0].file.maxsize: expected an integer, got 'big'"
    )
    assert info.value.line == 11


@pytest.mark.parametrize(
    ("text", "needle", "path", "fragment"),
    [
        ("logLevel: info\nlogLevl: debug\n", "logLevl", "", "unknown key 'logLevl'"),
        ("spool:\n  path: /x\n  maxbytes: 1Gi\n", "maxbytes", "spool", "unknown key 'maxbytes'"),
        ("route:\n  routes:\n    - match:\n        - receiver: a\n          namspace: x\n"
         "receivers: [{name: a, stdout: {}}]\n", "namspace", "route.routes[0].match[0]",
         "unknown key 'namspace'"),
        ("receivers:\n  - name: a\n    stdout: {}\n    retry:\n      maxAttempt: 3\n",
         "maxAttempt", "receivers[0].retry", "unknown key 'maxAttempt'"),
        ("http:\n  port: many\n", "port", "http.port", "expected an integer, got 'many'"),
        ("omitLookup: maybe\n", "omitLookup", "omitLookup", "expected true or false"),
        ("watch:\n  namespaces: default\n", "namespaces", "watch.namespaces", "expected a list"),
        ("spool:\n  whenFull: panic\n", "whenFull", "spool.whenFull", "'block' or 'dropOldest'"),
        ("spool:\n  historyWindow: 5 minutes\n", "historyWindow", "spool.historyWindow",
         "expected a duration"),
        ("spool:\n  maxBytes: lots\n", "maxBytes", "spool.maxBytes", "expected a size"),
        ("receivers:\n  - name: a\n    file: {}\n", "file", "receivers[0].file",
         "missing key 'path'"),
        ("receivers:\n  - name: a\n    stdout: {}\n    retry: {initialBackoff: 1h, "
         "maxBackoff: 1m}\n", "retry", "receivers[0].retry", "must not exceed"),
        ("metricsNamePrefix: 'my-prefix'\n", "metricsNamePrefix", "metricsNamePrefix",
         "must match the pattern"),
    ],
)
def test_errors_name_key_path_and_line(text: str, needle: str, path: str, fragment: str) -> None:
    err = error(text)
    assert err.line == line_of(text, needle), str(err)
    assert err.path == path, str(err)
    assert fragment in str(err)
    assert str(err).startswith(f"config.yaml:{err.line}: ")


def test_all_problems_are_reported_in_line_order() -> None:
    err = error("http: {port: x}\nfoo: 1\nspool: {batchMaxEvents: 0}\n")
    lines = str(err).splitlines()
    assert len(lines) == 3
    assert [line.split(":")[1] for line in lines] == ["1", "2", "3"]
    assert err.more and "unknown key 'foo'" in err.more[0]


def test_unknown_sink_key_is_named() -> None:
    text = "receivers:\n  - name: a\n    nats: {url: x}\n"
    err = error(text)
    assert err.line == 3
    assert "receivers[0] 'a': unknown key 'nats'" in str(err)
    assert "file, stdout" in str(err)


def test_receiver_needs_exactly_one_sink() -> None:
    none = error("receivers:\n  - name: a\n")
    assert "receivers[0] 'a': no receiver type given" in str(none) and none.line == 2
    two = error("receivers:\n  - name: a\n    stdout: {}\n    file: {path: /x}\n")
    assert "receivers[0] 'a': has 2 receiver types (stdout, file)" in str(two)
    assert two.line == 4


def test_receiver_name_is_required() -> None:
    err = error("receivers:\n  - stdout: {}\n")
    assert "missing key 'name'" in str(err) and err.path == "receivers[0]" and err.line == 2


def test_duplicate_receiver_names() -> None:
    text = "receivers:\n  - name: out\n    stdout: {}\n  - name: out\n    file: {path: /x}\n"
    err = error(text)
    assert err.line == 4 and err.path == "receivers[1].name"
    assert "duplicate receiver name 'out' (also receivers[0])" in str(err)


def test_route_to_undefined_receiver() -> None:
    text = """
        route:
          routes:
            - match:
                - receiver: dump
                - reason: BackOff
                  receiver: slak
        receivers:
          - name: dump
            stdout: {}
          - name: slack
            stdout: {}
    """
    err = error(text)
    assert err.line == line_of(text, "slak")
    assert err.path == "route.routes[0].match[1].receiver"
    assert "receiver 'slak' is not defined in receivers (defined: dump, slack)" in str(err)


def test_bad_label_regex_names_the_label() -> None:
    text = """
        route:
          match:
            - labels:
                app.kubernetes.io/name: "web("
    """
    err = error(text)
    assert err.line == line_of(text, "web(")
    assert err.path == "route.match[0].labels['app.kubernetes.io/name']"
    assert "invalid regular expression 'web('" in str(err)


def test_yaml_syntax_error_has_line() -> None:
    err = error("logLevel: info\nroute:\n  routes:\n  - match: [\n")
    assert err.line is not None and "invalid YAML" in str(err)


def test_duplicate_yaml_key_is_an_error() -> None:
    err = error("logLevel: info\nlogLevel: debug\n")
    assert err.line == 2 and "duplicate key 'logLevel' (first at line 1)" in str(err)


def test_top_level_must_be_a_mapping() -> None:
    assert "mapping" in str(error("- a\n- b\n"))


def test_load_config_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("clusterName: ${EP_TEST_CLUSTER}\nreceivers: [{name: s, stdout: {}}]\n")
    monkeypatch.setenv("EP_TEST_CLUSTER", "from-env")
    assert load_config(path).cluster_name == "from-env"
    path.write_text("receivers:\n  - name: s\n    stdout: {deDot: perhaps}\n")
    with pytest.raises(ConfigError, match=r"^config\.yaml:3: receivers\[0\]\.stdout\.deDot: "):
        load_config(str(path))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
