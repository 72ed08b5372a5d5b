"""Every shipped example config passes `eventpipe config validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from eventpipe.cli import cli
from tests.pipeline_harness import REPO

EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))


def _is_config(path: Path) -> bool:
    if "prometheus" in path.parts:  # Prometheus / Alertmanager files, checked by their tools
        return False
    text = path.read_text()
    return "receivers:" in text and "route:" in text


@pytest.mark.parametrize("path", [p for p in EXAMPLES if _is_config(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_example_config_validates(path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_there_are_examples() -> None:
    assert len([p for p in EXAMPLES if _is_config(p)]) >= 2
