"""`eventpipe events` on a real spool written through `Spool` with the corpus's Events.

Expected answers come from an independent model: the records in the order they were appended,
filtered and de-duplicated in plain Python, so a query that uses the wrong column, order or
version shows up as a difference.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from eventpipe.cli import cli
from eventpipe.core.occurrences import occurrences
from eventpipe.history import Filters, latest, open_read_only, show
from eventpipe.history.query import FETCH_ROWS
from eventpipe.history.render import human_age, render
from eventpipe.spool import Spool
from eventpipe.spool.rows import NewRecord
from eventpipe.watch.normalize import MalformedEvent, to_record
from tests.conftest import OpenSpool
from tests.fakeapi.corpus import corpus_paths, read_events

NOW = time.time()  # --since counts back from the real clock
OLD = NOW - 3 * 86_400  # first half observed three days ago
RECENT = NOW - 600  # second half ten minutes ago
BATCH = 500


def _records() -> list[tuple[NewRecord, dict[str, Any]]]:
    out = []
    for obj in read_events(corpus_paths()):
        try:
            out.append((to_record(obj, orjson.dumps(obj)), obj))
        except MalformedEvent:
            continue
    # Two more versions of the first Pod event: what a merged event's MODIFIED looks like.
    first = next(obj for rec, obj in out if rec.kind == "Pod")
    for bump in (1, 2):
        later = copy.deepcopy(first)
        later["metadata"]["resourceVersion"] = f"{first['metadata']['resourceVersion']}{bump}"
        later["count"] = int(first.get("count") or 1) + bump
        out.append((to_record(later, orjson.dumps(later)), later))
    return out


class Model:
    """What the spool holds, in seq order, for computing expected answers."""

    def __init__(self, stored: list[tuple[NewRecord, dict[str, Any], float]]) -> None:
        self.stored = stored

    def select(self, keep: Callable[[NewRecord, float], bool] = lambda r, t: True, *,
               versions: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        rows = [(rec, obj) for rec, obj, at in self.stored if keep(rec, at)]
        if not versions:
            latest = {rec.uid: i for i, (rec, _) in enumerate(rows)}
            rows = [(rec, obj) for i, (rec, obj) in enumerate(rows) if latest[rec.uid] == i]
        if limit is not None:
            rows = rows[-limit:]
        return [obj for _, obj in rows]


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Model]:
    path = tmp_path_factory.mktemp("history") / "spool.db"
    pairs = _records()
    half = len(pairs) // 2
    stored: list[tuple[NewRecord, dict[str, Any], float]] = []

    async def build() -> None:
        now = OLD

        def clock() -> float:
            return now

        spool = await Spool.open(path, clock=clock)
        try:
            for start in range(0, len(pairs), BATCH):
                now = OLD if start < half else RECENT
                part = pairs[start:start + BATCH]
                done = await spool.append([r for r, _ in part], stream="t", resource_version=None)
                stored.extend((*part[i], now) for i in done)
        finally:
            await spool.close()

    asyncio.run(build())
    return path, Model(stored)


def events(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["events", "--spool", str(path), *args])
    return result


def as_json(path: Path, *args: str) -> list[dict[str, Any]]:
    result = events(path, "-o", "json", *args)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    items: list[dict[str, Any]] = doc["items"]
    return items


def test_json_round_trips_the_latest_500_newest_last(spool: tuple[Path, Model]) -> None:
    path, model = spool
    assert as_json(path) == model.select(limit=500)
    everything = as_json(path, "--limit", "0")
    assert everything == model.select()
    assert len(everything) > 500


def test_yaml_is_the_same_list(spool: tuple[Path, Model]) -> None:
    path, model = spool
    result = events(path, "-o", "yaml", "--limit", "20")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["items"] == model.select(limit=20)


def test_versions_shows_every_stored_version(spool: tuple[Path, Model]) -> None:
    path, model = spool
    bumped = model.stored[-1][1]
    uid, name = bumped["metadata"]["uid"], bumped["involvedObject"]["name"]
    latest = as_json(path, "--for", f"pod/{name}", "--limit", "0")
    versions = as_json(path, "--for", f"pod/{name}", "--limit", "0", "--versions")
    assert [e for e in latest if e["metadata"]["uid"] == uid] == [bumped]
    counts = [e.get("count") or 1 for e in versions if e["metadata"]["uid"] == uid]
    assert counts == [counts[0], counts[0] + 1, counts[0] + 2]
    assert len(versions) == len(latest) + 2
    assert versions == model.select(lambda r, t: r.kind == "Pod" and r.name == name,
                                        versions=True)


@pytest.mark.parametrize("option,column", [("--namespace", "namespace"), ("-n", "namespace"),
                                           ("--kind", "kind"), ("--name", "name"),
                                           ("--reason", "reason"), ("--type", "type")])
def test_each_filter_selects_its_column(spool: tuple[Path, Model], option: str,
                                        column: str) -> None:
    path, model = spool
    value = next(getattr(rec, column) for rec, _, _ in model.stored[len(model.stored) // 3:]
                 if all((rec.namespace, rec.kind, rec.name, rec.reason, rec.type)))
    expected = model.select(lambda r, t: getattr(r, column) == value)
    assert expected
    assert as_json(path, option, str(value), "--limit", "0") == expected


def test_kind_and_type_ignore_case_and_short_names(spool: tuple[Path, Model]) -> None:
    path, model = spool
    pods = model.select(lambda r, t: r.kind == "Pod")
    assert as_json(path, "--kind", "po", "--limit", "0") == pods
    assert as_json(path, "--kind", "pods", "--limit", "0") == pods
    warnings = model.select(lambda r, t: r.type == "Warning")
    assert warnings and as_json(path, "--type", "warning", "--limit", "0") == warnings


@pytest.mark.parametrize("kind,short", [("Pod", "po"), ("Deployment", "deploy"),
                                        ("ReplicaSet", "rs"), ("Node", "no"),
                                        ("DaemonSet", "ds"), ("Job", "job")])
def test_for_accepts_kubectl_short_names(spool: tuple[Path, Model], kind: str,
                                         short: str) -> None:
    path, model = spool
    name = next(rec.name for rec, _, _ in model.stored if rec.kind == kind)
    expected = model.select(lambda r, t: r.kind == kind and r.name == name)
    assert expected
    for spelling in (short, kind, kind.lower(), kind.upper()):
        assert as_json(path, "--for", f"{spelling}/{name}", "--limit", "0") == expected


def test_since_counts_from_when_the_version_was_stored(spool: tuple[Path, Model]) -> None:
    path, model = spool
    recent = model.select(lambda r, t: t >= RECENT)
    assert recent and len(recent) < len(model.select())
    assert as_json(path, "--since", "1d", "--limit", "0") == recent
    assert as_json(path, "--since", "7d", "--limit", "0") == model.select()
    assert as_json(path, "--since", "1s", "--limit", "0") == []


def test_table_looks_like_kubectl(spool: tuple[Path, Model]) -> None:
    path, model = spool
    result = events(path, "--limit", "30")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.rstrip("\n").split("\n")
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert len(lines) == 30
    starts = [header.index(col) for col in ("TYPE", "REASON", "OBJECT", "MESSAGE")]
    for line, obj in zip(lines, model.select(limit=30), strict=True):
        involved = obj.get("involvedObject") or obj.get("regarding") or {}
        assert line[starts[0]:starts[1]].strip() == (obj.get("type") or "")
        assert line[starts[1]:starts[2]].strip() == (obj.get("reason") or "")
        assert line[starts[2]:].startswith(f"{involved.get('kind')}/{involved.get('name')} ")
        message = " ".join(str(obj.get("message") or obj.get("note") or "").split())
        assert line[starts[3]:] == message


def test_wide_adds_namespace_source_first_seen_count(spool: tuple[Path, Model]) -> None:
    path, model = spool
    result = events(path, "-o", "wide", "--limit", "5")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.rstrip("\n").split("\n")
    assert header.split() == ["NAMESPACE", "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SOURCE",
                              "MESSAGE", "FIRST", "SEEN", "COUNT"]
    for line, obj in zip(lines, model.select(limit=5), strict=True):
        assert line.startswith(obj["metadata"].get("namespace", "") + " ")
        assert line.rsplit(" ", 1)[1] == str(occurrences(obj))


def test_nothing_found_is_said(spool: tuple[Path, Model]) -> None:
    path, _ = spool
    result = events(path, "--reason", "NoSuchReason")
    assert result.exit_code == 0 and result.output.strip() == "No events found."
    assert as_json(path, "--reason", "NoSuchReason") == []


async def test_watch_prints_appended_versions(tmp_path: Path, open_spool: OpenSpool,
                                              spool: tuple[Path, Model]) -> None:
    path = tmp_path / "live.db"
    pairs = _records()[:50]
    writer = await open_spool(path.name)
    printed: list[str] = []
    listed, grown = asyncio.Event(), asyncio.Event()

    def echo(text: str) -> None:
        printed.append(text)
        (grown if listed.is_set() else listed).set()

    await writer.append([r for r, _ in pairs[:10]], stream="t", resource_version=None)
    task = asyncio.create_task(show(path, Filters(), output="json", watch=True, echo=echo,
                                    interval=0.01, iterations=10_000))
    try:
        await asyncio.wait_for(listed.wait(), 10)
        await writer.append([r for r, _ in pairs[10:]], stream="t", resource_version=None)
        await asyncio.wait_for(grown.wait(), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert documents(printed[0]) == [obj for _, obj in pairs[:10]]
    assert documents("\n".join(printed[1:])) == [obj for _, obj in pairs[10:]]


def documents(text: str) -> list[Any]:
    """The JSON documents printed one after another (as `-w -o json` does)."""
    decoder, out, pos = json.JSONDecoder(), [], 0
    while pos < len(text.rstrip()):
        doc, pos = decoder.raw_decode(text, pos)
        out.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


async def test_watch_is_bounded_by_iterations(spool: tuple[Path, Model]) -> None:
    path, _ = spool
    out: list[str] = []
    shown = await show(path, Filters(reason="NoSuchReason"), watch=True, echo=out.append,
                       interval=0, iterations=3)
    assert shown == 0 and out == []


def test_missing_spool_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = events(missing)
    assert result.exit_code == 1
    assert f"no spool at {missing}" in result.output
    assert not missing.exists()  # a query never creates a spool
    other = tmp_path / "other.db"
    other.write_bytes(b"not sqlite at all" * 100)
    result = events(other)
    assert result.exit_code == 1 and "is not an eventpipe spool" in result.output


def test_usage_errors(spool: tuple[Path, Model], tmp_path: Path) -> None:
    path, _ = spool
    assert events(path, "--for", "web-0").exit_code == 2
    assert events(path, "--for", "pod/x", "--name", "y").exit_code == 2
    assert events(path, "--since", "soon").exit_code == 2
    result = CliRunner().invoke(cli, ["events"])
    assert result.exit_code == 2 and "--config or --spool" in result.output


def test_config_names_the_spool(spool: tuple[Path, Model], tmp_path: Path) -> None:
    path, model = spool
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"spool": {"path": str(path)}, "receivers": []}))
    result = CliRunner().invoke(cli, ["events", "--config", str(config), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["items"] == model.select(limit=500)


@pytest.mark.parametrize("seconds,text", [(-5, "<invalid>"), (-1, "0s"), (0, "0s"),
                                          (119, "119s"), (120, "2m"), (125, "2m5s"),
                                          (600, "10m"), (10_799, "179m"), (3 * 3600, "3h"),
                                          (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"),
                                          (47 * 3600, "47h"), (48 * 3600, "2d"),
                                          (50 * 3600, "2d2h"), (8 * 86400, "8d"),
                                          (2 * 365 * 86400, "2y"),
                                          (2 * 365 * 86400 + 86400, "2y1d"),
                                          (9 * 365 * 86400, "9y")])
def test_ages_round_like_kubectl(seconds: int, text: str) -> None:
    assert human_age(seconds) == text


# --- --limit 0 streams ---------------------------------------------------------------------

async def _printed(path: Path, output: str, *, versions: bool, streamed: bool) -> str:
    """What `show` prints with no limit (streamed), or the whole list rendered at once."""
    if streamed:
        out: list[str] = []
        await show(path, Filters(), output=output, limit=None, versions=versions,
                   echo=out.append, clock=lambda: NOW)
        return "\n".join(out)
    conn = await open_read_only(path)
    try:
        rows = await latest(conn, Filters(), limit=None, versions=versions)
    finally:
        await conn.close()
    return render(rows, output, now=NOW)


@pytest.mark.parametrize("versions", [False, True])
@pytest.mark.parametrize("output", ["json", "yaml", "table", "wide"])
async def test_limit_0_streams_exactly_what_the_whole_list_prints(
        spool: tuple[Path, Model], output: str, versions: bool) -> None:
    path, model = spool
    assert len(model.select(versions=versions)) > 2 * FETCH_ROWS  # several chunks
    streamed = await _printed(path, output, versions=versions, streamed=True)
    assert streamed == await _printed(path, output, versions=versions, streamed=False)
    if output == "json":
        assert orjson.loads(streamed)["items"] == model.select(versions=versions)


def test_limit_0_with_nothing_found_is_an_empty_list(spool: tuple[Path, Model]) -> None:
    assert as_json(spool[0], "--limit", "0", "--reason", "NoSuchReason") == []
    result = events(spool[0], "--limit", "0", "--reason", "NoSuchReason")
    assert result.output == "No events found.\n"


async def test_limit_0_with_watch_prints_every_object_one_by_one(
        spool: tuple[Path, Model]) -> None:
    path, model = spool
    out: list[str] = []
    shown = await show(path, Filters(), output="json", limit=None, watch=True, echo=out.append,
                       interval=0, iterations=1)
    assert shown == len(model.select())
    assert documents("\n".join(out)) == model.select()
