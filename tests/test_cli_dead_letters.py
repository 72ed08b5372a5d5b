"""Dead letters end to end, through the real commands: a layout that cannot render some events
dead-letters exactly those (`eventpipe spool stats` shows them, per receiver), replaying them
with the same layout keeps them dead with one more attempt, and replaying them with a layout that
now renders delivers and resolves them, with no cursor moved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    k8s_event,
    read_lines,
    run_cli,
    running,
    wait_until,
    write_config,
)

# `index` of a string is a per-event RenderError: events whose involvedObject has a fieldPath
# fail, events without one render (index of a missing value is empty, as in Go).
FAILING = {"name": "{{ .InvolvedObject.Name }}", "fp": "{{ index .InvolvedObject.FieldPath 0 }}"}
FIXED = {"name": "{{ .InvolvedObject.Name }}", "fp": "{{ .InvolvedObject.FieldPath }}"}


def picky_config(tmp_path: Path, layout: dict[str, str], name: str) -> Path:
    return write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig", name=name,
        receivers=[{"name": "dump", "file": {"path": str(tmp_path / "dump.jsonl")}},
                   {"name": "picky", "file": {"path": str(tmp_path / "picky.jsonl"),
                                              "layout": layout}}],
        route={"routes": [{"match": [{"receiver": "dump"}]},
                          {"match": [{"receiver": "picky"}]}]})


async def spool_state(path: Path) -> tuple[dict[str, int], list[tuple[int, int, str]]]:
    """Cursors and picky's dead letters as (seq, attempts, error)."""
    spool = await Spool.open(path)
    try:
        cursors = {name: await spool.cursor(name) for name in ("dump", "picky")}
        dead = [(d[1], d[3], d[2]) for d in await spool.dead_letters("picky")]
        return cursors, sorted(dead)
    finally:
        await spool.close()


async def stats_json(*args: str) -> dict[str, Any]:
    result = await run_cli("spool", "stats", *args, "-o", "json")
    assert result.code == 0, result.stderr
    stats: dict[str, Any] = orjson.loads(result.stdout)
    return stats


async def test_dead_letters_are_counted_kept_and_resolved_by_replay(api: FakeApiServer,
                                                                    tmp_path: Path) -> None:
    failing = picky_config(tmp_path, FAILING, "failing.yaml")
    picky = tmp_path / "picky.jsonl"
    async with running(failing) as pipeline:
        for i in range(15):
            api.add(k8s_event(f"p-{i}", field_path="spec.containers{app}" if i % 3 == 0
                              else None))
        await wait_until(lambda: len(read_lines(tmp_path / "dump.jsonl")) == 15
                         and all(w.acked_seq == 15 for w in pipeline.workers),
                         what="both receivers through all 15 events")
        assert pipeline.metrics.sink_dead_letters.labels("picky")._value.get() == 5
    failed_seqs = [1, 4, 7, 10, 13]  # seq i+1 for the events with a fieldPath
    assert [line["name"] for line in read_lines(picky)] == [
        f"p-{i}" for i in range(15) if i % 3]
    cursors, dead = await spool_state(tmp_path / "spool.db")
    assert cursors == {"dump": 15, "picky": 15}
    assert [(seq, attempts) for seq, attempts, _ in dead] == [(s, 1) for s in failed_seqs]
    assert all("can't index item of type string" in error for _, _, error in dead)

    # spool stats: by config (its receivers), by path (every cursor), text and JSON.
    by_config, by_path = await stats_json("--config", str(failing)), await stats_json(
        "--spool", str(tmp_path / "spool.db"))
    for stats in (by_config, by_path):
        assert (stats["events"], stats["head_seq"], stats["dead_letters"]) == (15, 15, 5)
        assert stats["receivers"] == {
            "dump": {"acked_seq": 15, "lag_events": 0, "lag_seconds": 0.0, "dead_letters": 0},
            "picky": {"acked_seq": 15, "lag_events": 0, "lag_seconds": 0.0, "dead_letters": 5}}
        assert stats["bytes"] > 0
    assert by_config["path"] == str(tmp_path / "spool.db")
    text = await run_cli("spool", "stats", "--config", str(failing))
    assert text.code == 0, text.stderr
    assert "events:       15 (head seq 15)" in text.stdout
    assert "dead letters: 5" in text.stdout
    rows = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines()[-2:]}
    assert rows == {"dump": ["15", "0", "0.0", "0"], "picky": ["15", "0", "0.0", "5"]}

    # Replaying with the template that still fails: still dead, one more attempt each.
    again = await run_cli("replay", "--config", str(failing), "--receiver", "picky",
                          "--dead-letters")
    assert again.code == 1
    assert again.stdout.strip() == ("replayed to picky: 0 sent, 5 dead-lettered, "
                                    "0 not routed to it")
    cursors, dead = await spool_state(tmp_path / "spool.db")
    assert [(seq, attempts) for seq, attempts, _ in dead] == [(s, 2) for s in failed_seqs]
    assert len(read_lines(picky)) == 10

    # With a layout that renders, the dead letters go through and are resolved.
    fixed = picky_config(tmp_path, FIXED, "fixed.yaml")
    done = await run_cli("replay", "--config", str(fixed), "--receiver", "picky",
                         "--dead-letters")
    assert done.code == 0, done.stderr
    assert done.stdout.strip() == ("replayed to picky: 5 sent, 0 dead-lettered, "
                                   "0 not routed to it")
    assert await spool_state(tmp_path / "spool.db") == ({"dump": 15, "picky": 15}, [])
    replayed = read_lines(picky)[10:]
    assert replayed == [{"name": f"p-{i}", "fp": "spec.containers{app}"}
                        for i in range(0, 15, 3)]
    assert len(read_lines(tmp_path / "dump.jsonl")) == 15
    stats = await stats_json("--config", str(fixed))
    assert stats["dead_letters"] == 0
    assert stats["receivers"]["picky"]["dead_letters"] == 0
