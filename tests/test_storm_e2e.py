"""Storm control through eventpipe run in-process: a 300-version BackOff storm to the WeCom fake
through a throttle gives the first message and one summary, which the robot's rate limit delays
but does not lose; another pod is not held back. Real time, so the window is a few seconds."""

from __future__ import annotations

from pathlib import Path

from eventpipe.spool import Spool
from tests import pipeline_harness as harness
from tests.fakeapi import FakeApiServer
from tests.fakes.im import WecomBot
from tests.pipeline_harness import running

WINDOW = 3.0


async def test_storm_to_wecom_gives_two_messages_and_the_rate_limit_only_delays_the_summary(
        api: FakeApiServer, tmp_path: Path) -> None:
    async with WecomBot(token="storm-key") as wecom:
        path = harness.write_config(
            tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={"clusterName": "prod"},
            receivers=[{"name": "bot", "wecom": {"webhook": wecom.hook()},
                        "throttle": {"window": f"{WINDOW:g}s"},
                        "retry": {"initialBackoff": "20ms", "maxBackoff": "200ms"}}],
            route={"routes": [{"match": [{"receiver": "bot"}]}]})
        async with running(path) as pipeline:
            api.add_many([harness.k8s_event("web-1", uid="uid-storm", count=c)
                          for c in range(1, 301)])
            await wecom.wait_for(lambda _: len(wecom.delivered) == 1, what="the first message")
            wecom.limit(0)  # the robot now answers 45009 to everything
            await wecom.wait_for(lambda _: len(wecom.requests) >= 3, within=WINDOW + 20,
                                 what="the summary refused twice")
            assert len(wecom.delivered) == 1
            wecom.limit(None)
            await wecom.wait_for(lambda _: len(wecom.delivered) == 2, what="the summary, later")
            api.add(harness.k8s_event("web-2", uid="uid-other"))
            await wecom.wait_for(lambda _: len(wecom.delivered) == 3, what="another pod's event")
            throttled = pipeline.metrics.sink_throttled.labels("bot")._value.get()
        spool = await Spool.open(tmp_path / "spool.db")
        try:
            rows = await spool.read_after(0, 1000)
        finally:
            await spool.close()
    storm = [r for r in rows if r[1] == "uid-storm"]
    spread = storm[-1][3] - storm[0][3]
    assert len(storm) == 300 and spread < WINDOW, f"storm observed over {spread:.2f}s"
    first, summary, other = (m["text"]["content"] for m in wecom.messages())
    assert "Count: 1\n" in first and "more occurrences" not in first
    assert "Count: 300\n" in summary
    assert "…and 299 more occurrences in the last 3s" in summary
    assert "Object: Pod/web-2" in other and "more occurrences" not in other
    assert throttled == 299
