"""The Dockerfile cannot be built here (no Docker daemon), so this checks what can be checked
without building: its entrypoint and paths agree with the Helm chart and with eventpipe's
defaults (config mount, spool volume, port 2112, uid 10001), its built-in config is valid, and
resmo's `eventpipe -conf=X` argument form reaches `run --config X`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from eventpipe.cli import cli, translate_resmo_args
from eventpipe.server.config import HttpConfig
from eventpipe.spool.config import SpoolConfig

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "eventpipe"
CONFIG_PATH = "/etc/eventpipe/config.yaml"
SPOOL_DIR = "/var/lib/eventpipe"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined, heredocs kept
    as part of their instruction's arguments."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<'?(\w+)'?", line)
        if heredoc:
            body = []
            while lines[i] != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            line += "\n" + "\n".join(body)
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM" and " AS " not in rest.upper():
            out = []  # the final stage starts here; earlier stages only build
        out.append((word.upper(), rest.strip()))
    return out


def one(kind: str) -> str:
    found = [args for word, args in instructions() if word == kind]
    assert len(found) == 1, f"expected one {kind} in the final stage, got {found}"
    return found[0]


def chart_values() -> dict[str, object]:
    values: dict[str, object] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def test_base_image_and_install() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"pip install .*\s\.$", text, re.M), "the image installs the project"


def test_entrypoint_and_default_command_match_the_chart() -> None:
    assert json.loads(one("ENTRYPOINT")) == ["eventpipe"]
    command = json.loads(one("CMD"))
    assert command == ["run", "--config", CONFIG_PATH]
    statefulset = (CHART / "templates" / "statefulset.yaml").read_text()
    assert f"args: {json.dumps(command)}" in statefulset
    assert "mountPath: /etc/eventpipe\n" in statefulset
    assert f"mountPath: {SPOOL_DIR}\n" in statefulset


def test_spool_volume_matches_config_default_and_chart() -> None:
    assert one("VOLUME") == SPOOL_DIR
    assert str(Path(SpoolConfig().path).parent) == SPOOL_DIR
    config = chart_values()["config"]
    assert isinstance(config, dict)
    assert str(Path(config["spool"]["path"]).parent) == SPOOL_DIR


def test_port_matches_http_default_and_chart() -> None:
    assert one("EXPOSE") == str(HttpConfig().port) == "2112"
    service = chart_values()["service"]
    assert isinstance(service, dict) and service["port"] == 2112


def test_runs_as_the_chart_uid() -> None:
    # Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
    assert one("USER") == "10001:10001"
    values = chart_values()
    for key in ("podSecurityContext", "securityContext"):
        context = values[key]
        assert isinstance(context, dict) and context["runAsUser"] == 10001
    assert "useradd --system --uid 10001" in one("RUN")


def test_builtin_config_is_valid(tmp_path: Path) -> None:
    (copy,) = [args for word, args in instructions() if word == "COPY" and "<<" in args]
    header, _, body = copy.partition("\n")
    assert header.split()[-1] == CONFIG_PATH
    path = tmp_path / "config.yaml"
    path.write_text(body + "\n")
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert str(Path(yaml.safe_load(body)["spool"]["path"]).parent) == SPOOL_DIR


def test_dockerignore_keeps_only_the_build_inputs() -> None:
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!eventpipe/"} <= set(patterns)


@pytest.mark.parametrize("argv", [["-conf=/data/config.yaml"], ["-conf", "/data/config.yaml"],
                                  ["--conf=/data/config.yaml"]])
def test_resmo_conf_argument_form(argv: list[str]) -> None:
    assert translate_resmo_args(argv) == ["run", "--config", "/data/config.yaml"]


def test_resmo_form_reaches_run(tmp_path: Path) -> None:
    """`docker run IMAGE -conf=X` → `eventpipe -conf=X` → `run --config X`, which loads X."""
    bad = tmp_path / "config.yaml"
    bad.write_text("receivers: 3\n")
    args = translate_resmo_args([f"-conf={bad}", "-metrics-address=:2113"])
    assert args == ["run", "--config", str(bad), "--metrics-address", ":2113"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "invalid config: config.yaml:1: receivers" in result.output


def test_other_exporters_commands_are_links_to_eventpipe() -> None:
    """`/kube-eventer` and `./kubernetes-event-exporter` (from WORKDIR /, outside the spool
    volume that would hide them) run eventpipe; the spool of a config without `spool:` is on
    the volume."""
    links = [args for word, args in instructions() if word == "RUN" and "ln -s" in args]
    assert links and all(f"ln -s /opt/eventpipe/bin/eventpipe /{name}" in links[0]
                         for name in ("kube-eventer", "kubernetes-event-exporter"))
    assert one("WORKDIR") == "/"
    env = one("ENV")
    assert f"EVENTPIPE_SPOOL={SPOOL_DIR}/spool.db" in env
    assert translate_resmo_args(["--source=kubernetes:https://kubernetes.default.svc", "--sink=x"]
                                ) == ["run", "--sink", "x"]
