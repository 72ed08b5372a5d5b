"""README.md stays true: its config table is the one the models generate."""

from __future__ import annotations

from eventpipe.config.reference import BEGIN, END, render_reference
from tests.pipeline_harness import REPO


def test_readme_config_reference_matches_the_models() -> None:
    text = (REPO / "README.md").read_text()
    inside = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert inside == render_reference(), (
        "README.md's config table is stale: regenerate with "
        "`python -m eventpipe.config.reference`")


def test_readme_gives_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make install" in text and "make test" in text
