"""Every user regex runs on RE2: a pattern that makes a backtracking engine take exponential
time (``^(a|aa)+$`` against 41 characters: ~40 s in Python's `re`) is matched in linear time in
route rules, receiver filters and kube-eventer's `reason`; syntax RE2 rejects stops start-up
with the file, line and key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from eventpipe.config import ConfigError, RouteConfig, RuleConfig, load_config_text
from eventpipe.config.kube_eventer import parse_sink_flag
from eventpipe.config.kube_eventer_options import anchored
from eventpipe.core import regex
from eventpipe.delivery.config import FiltersConfig
from eventpipe.delivery.filters import EventFilter
from eventpipe.routing import compile_route
from eventpipe.spool.rows import StoredRow
from eventpipe.watch.normalize import to_record
from tests.pipeline_harness import REPO

EVIL = "^(a|aa)+$"
VICTIM = "a" * 40 + "b"  # 41 characters: no match, and every way to split the a's is tried
FAST = 0.5  # seconds; RE2 takes microseconds, Python's re tens of seconds


def timed(call: Callable[[], object]) -> tuple[object, float]:
    """What `call` returned and how many seconds it took."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def test_nested_quantifier_in_a_route_rule_is_linear() -> None:
    assert len(VICTIM) == 41
    router = compile_route(RouteConfig(match=[RuleConfig(message=EVIL, receiver="r")]))
    event = {"message": VICTIM, "metadata": {}, "involvedObject": {}}
    found, elapsed = timed(lambda: router.receivers_for(event))
    assert found == frozenset() and elapsed < FAST, elapsed
    assert router.receivers_for({**event, "message": "a" * 41}) == {"r"}


def test_nested_quantifier_in_label_rules_and_filters_is_linear() -> None:
    router = compile_route(RouteConfig(match=[RuleConfig(labels={"app": EVIL}, receiver="r")]))
    event = {"metadata": {}, "involvedObject": {"labels": {"app": VICTIM}}}
    found, elapsed = timed(lambda: router.receivers_for(event))
    assert found == frozenset() and elapsed < FAST, elapsed

    check = EventFilter(FiltersConfig(reasons=[EVIL]), receiver="bot")
    obj = {"metadata": {"uid": "u", "resourceVersion": "1"}, "reason": VICTIM}
    record = to_record(obj, orjson.dumps(obj))
    row = StoredRow(seq=1, observed_at=0.0, count_delta=1,
                    **record._replace(event_time=None)._asdict())
    passed, elapsed = timed(lambda: check(row))
    assert passed is False and elapsed < FAST, elapsed


def test_kube_eventer_reason_regex_is_linear() -> None:
    flag = parse_sink_flag(f"webhook:http://hooks.local/x?reason={EVIL}")
    rule = RuleConfig.model_validate({**flag.match, "receiver": "r"})
    router = compile_route(RouteConfig(match=[rule]))
    found, elapsed = timed(lambda: router.receivers_for({"reason": VICTIM, "metadata": {}}))
    assert found == frozenset() and elapsed < FAST, elapsed


@pytest.mark.parametrize("names", [["Back Off"], ["a.b", "c|d"], ["x(y", "z*", "w\\v"]])
def test_exact_names_match_themselves_only(names: list[str]) -> None:
    search = regex.compile_search(anchored(names))
    for name in names:
        assert search(name)
        assert not search(name + "x")
    assert not search("".join(names) + "!")


CONFIG = """\
route:
  routes:
    - match:
        - receiver: out
          reason: "^Back"
          message: "(?=lookahead)"
receivers:
  - name: out
    stdout: {}
"""


@pytest.mark.parametrize("pattern", ["(?=lookahead)", "(a)\\\\1", "a*+", "(?<!x)y"])
def test_syntax_re2_rejects_names_file_line_and_key(pattern: str) -> None:
    text = CONFIG.replace('"(?=lookahead)"', f'"{pattern}"')
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="config.yaml", environ={})
    message = str(info.value)
    assert message.startswith("config.yaml:6: route.routes[0].match[0].message: "), message
    assert "invalid regular expression" in message and "RE2" in message, message


def test_filter_reason_re2_rejects_names_its_key() -> None:
    text = textwrap.dedent("""\
        receivers:
          - name: out
            stdout: {}
            filters:
              reasons: ["ok", "(?!x)"]
        """)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="config.yaml", environ={})
    assert str(info.value).startswith("config.yaml:5: receivers[0].filters.reasons[1]: ")


def test_run_with_a_lookahead_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    proc = subprocess.run([sys.executable, "-m", "eventpipe", "run", "--config", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "config.yaml:6: route.routes[0].match[0].message: " in lines[0]
    assert "invalid perl operator" in lines[0]


def test_answers_hold_past_the_memo_and_for_long_and_unicode_texts() -> None:
    search = regex.compile_search("^ns-[0-9]*7$")
    for i in range(3 * regex.MEMO_MAX_ENTRIES):  # the memo starts over twice
        assert search(f"ns-{i}") is (i % 10 == 7)
        assert search(f"ns-{i}") is (i % 10 == 7)  # a remembered answer, the same
    assert search("ns-" + "1" * 500 + "7") and not search("ns-" + "1" * 500)
    umlaut = regex.compile_search("Größe: [^ ]+ überschritten")
    assert umlaut("Pod web: Größe: 5Gi überschritten") and not umlaut("Grosse: 5Gi")
    assert regex.compile_search("^.$")("ü")  # one character, not one byte

