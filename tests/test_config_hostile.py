"""Config files that are hostile or broken: an alias bomb is refused before it expands, a file
above the size cap and an empty file are errors, a bad layout names its line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from eventpipe.config import ConfigError, load_config, load_config_text
from eventpipe.config.loader import MAX_CONFIG_BYTES
from tests.pipeline_harness import REPO


def bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" document: `width` ** `levels` strings from a few hundred bytes."""
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def load(text: str) -> object:
    return load_config_text(textwrap.dedent(text), source="config.yaml", environ={})


def test_alias_bomb_is_refused_fast_and_small() -> None:
    text = bomb()
    assert len(text) < 700  # the 628-byte class of file that took 46 s and 3.4 GB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as info:
            load(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 20 * 1024 * 1024, peak
    message = str(info.value)
    assert message.startswith("config.yaml:") and "YAML aliases expand the document" in message


def test_anchors_reused_a_few_times_still_load() -> None:
    """One receiver's settings merged into 19 others (`<<: *hook`) is far below the bound."""
    config = load_config_text(
        "route:\n  routes:\n    - match:\n" +
        "".join(f"        - receiver: r{i}\n" for i in range(20)) + "receivers:\n" +
        "  - name: r0\n    webhook: &hook\n      endpoint: http://hooks.local/0\n"
        "      headers: {X-Team: a}\n      layout: {msg: '{{ .Message }}'}\n" +
        "".join(f"  - name: r{i}\n    webhook:\n      <<: *hook\n"
                f"      endpoint: http://hooks.local/{i}\n" for i in range(1, 20)),
        source="config.yaml", environ={})
    assert len(config.receivers) == 20
    assert getattr(config.receivers[7].sink, "headers", None) == {"X-Team": "a"}


def test_file_above_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "larger than 1024 KiB" in str(info.value)
    path.write_bytes(b"# padding\n" * (MAX_CONFIG_BYTES // 20) + b"receivers: []\n")
    assert load_config(path).receivers == []


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n"])
def test_empty_config_is_an_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert "the config file is empty" in str(info.value)


def test_bad_layout_names_its_line() -> None:
    text = """\
        route:
          routes:
            - match:
                - receiver: hook
        receivers:
          - name: hook
            webhook:
              endpoint: http://hooks.local/x
              layout:
                details:
                  ok: "{{ .Reason }}"
                  broken: "{{ .Message | nofunc }}"
        """
    with pytest.raises(ConfigError) as info:
        load(text)
    message = str(info.value)
    assert message.startswith("config.yaml:12: receivers.hook.layout.details.broken: "), message
    assert "function 'nofunc' not defined" in message


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("bomb", bomb(), "YAML aliases expand the document"),
    ("empty", "# nothing yet\n", "the config file is empty"),
])
def test_run_refuses_them_with_one_line_and_exit_2(tmp_path: Path, name: str, text: str,
                                                   fragment: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "eventpipe", "run", "--config", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr, proc.stderr
