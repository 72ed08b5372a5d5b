"""`eventpipe demo`: see eventpipe work without a cluster.

A simulated cluster (`cluster.py`, an aiohttp server speaking the Events list/watch API) replays
real Events bundled with the package (`sample.py`, `events.json`, `SOURCES.md`) as a live stream
with merged-event storms and node flaps (`scenario.py`); the real Pipeline watches it through the
real kubernetes-asyncio client, and `summary.py` prints what flows where (`runner.py` wires it).

Public surface::

    run_demo(DemoOptions(...), out=sys.stdout, tty=sys.stdout.isatty()) -> exit code
    demo_config(options, extra_config) -> Config
    SimulatedCluster, Scenario           (usable on their own, e.g. in tests)
"""

from eventpipe.demo.cluster import SimulatedCluster
from eventpipe.demo.runner import DemoOptions, demo_config, run_demo
from eventpipe.demo.scenario import Scenario

__all__ = ["DemoOptions", "Scenario", "SimulatedCluster", "demo_config", "run_demo"]
