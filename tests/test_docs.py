"""The docs stay true: the configuration reference is the one the models generate, README.md
gives the two set-up commands and its examples load, and every relative link in the docs
reaches a file (and a heading, when it names one)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from eventpipe.config import load_config_text
from eventpipe.config.reference import BEGIN, END, render_reference, with_reference
from tests.pipeline_harness import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
REGENERATE = "python -m eventpipe.config.reference --write docs/configuration.md"
DOCS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md",
               REPO / "charts" / "eventpipe" / "README.md", *(REPO / "docs").glob("*.md")])

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
# What the README's snippets reference without a default.
SNIPPET_ENV = {"WECOM_KEY": "key"}


def test_configuration_reference_matches_the_models() -> None:
    text = CONFIGURATION.read_text()
    inside = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert inside == render_reference(), (
        f"docs/configuration.md's config table is stale: regenerate with `{REGENERATE}`")


def test_configuration_names_the_regenerate_command_at_the_top() -> None:
    head = CONFIGURATION.read_text()[:600]
    assert REGENERATE in head


def test_regenerating_keeps_the_hand_written_text() -> None:
    document = f"intro\n{BEGIN}\nold table\n{END}\noutro\n"
    assert with_reference(document, "new") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"


def test_readme_gives_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make install" in text and "make test" in text


def _readme_yaml() -> list[str]:
    return _YAML_BLOCK.findall((REPO / "README.md").read_text())


def test_readme_configs_load() -> None:
    configs = [block for block in _readme_yaml() if "receivers:" in block]
    assert configs, "README.md has no complete config"
    for block in configs:
        load_config_text(block, source="README.md", environ=SNIPPET_ENV)


def test_readme_receiver_snippets_load() -> None:
    snippets = [block for block in _readme_yaml() if block.startswith("- name:")]
    # file, Loki, Kafka, Elasticsearch, webhook, IM bot
    assert len(snippets) >= 6, "README.md lost its per-use receiver examples"
    for block in snippets:
        name = block.split()[2]
        config = (f"route:\n  routes:\n    - match:\n        - receiver: {name}\n"
                  f"receivers:\n{textwrap.indent(block, '  ')}")
        load_config_text(config, source=f"README.md receiver {name}", environ=SNIPPET_ENV)


def test_readme_alert_example_is_a_shipped_rule() -> None:
    shipped = yaml.safe_load((REPO / "examples" / "prometheus" / "rules.yaml").read_text())
    rules = {rule["alert"]: rule["expr"] for group in shipped["groups"]
             for rule in group["rules"]}
    alerts = [yaml.safe_load(block)[0] for block in _readme_yaml()
              if block.startswith("- alert:")]
    assert alerts, "README.md lost its Prometheus alerting example"
    for alert in alerts:
        assert rules.get(alert["alert"]) == alert["expr"], alert["alert"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {_slug(h) for h in _HEADING.findall(text)}


def _relative_links(path: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text()))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", [d for d in DOCS if d.exists()],
                         ids=lambda d: str(d.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for link in _relative_links(doc):
        target, _, anchor = link.partition("#")
        file = (doc.parent / target).resolve() if target else doc
        if not file.exists() or not file.resolve().is_relative_to(REPO.resolve()):
            broken.append(f"{link}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{link}: no heading with that anchor in {file.name}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# Top\n[a](missing.md) [b](#top) `[c](in-code.md)`\n")
    assert _relative_links(doc) == ["missing.md", "#top"]
    assert _anchors(doc) == {"top"}
