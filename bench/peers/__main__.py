"""eventpipe beside resmo's kubernetes-event-exporter and kube-eventer, on the real control
plane (tests/realkube/controlplane.py, binaries from `make kube`; peers from `make peers`).

    python -m bench.peers [--runs 3] [--only burst,updates,sink_down,restart,old] [--down 60]

Each scenario (bench/peers/scenarios.py) runs all exporters at once against one namespace, each
with its own webhook receiver, and reports per exporter: versions delivered out of those the API
server served, duplicate deliveries, peak RSS (VmHWM) and CPU seconds (user + system) of its
process(es). Medians over `--runs`; the single runs are kept in bench/out/peers.json.
The sink_down scenario alone takes about seven minutes a run (see scenarios.py).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import tempfile
from pathlib import Path

import orjson

from bench import machine
from bench.common import OUT, WORK
from bench.peers import exporters
from bench.peers.cluster import EventWriter
from bench.peers.scenarios import SCENARIOS, Stream
from bench.peers.sink import WebhookSink
from tests.realkube import controlplane

FIGURES = ("served", "delivered", "duplicates", "peak_rss_mib", "cpu_s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--down", type=float, default=60.0,
                        help="sink_down: seconds the receivers are down")
    parser.add_argument("--first-run", type=int, default=0,
                        help="number of the first run (names its namespaces), so several "
                        "invocations can share one machine")
    parser.add_argument("--json", type=Path, default=OUT / "peers.json",
                        help="where the medians and single runs are written")
    return parser.parse_args(argv)


def run_scenario(plane: controlplane.ControlPlane, scenario: str, run: int, names: list[str],
                 down_s: float) -> dict[str, dict[str, float]]:
    """One scenario once; figures per exporter."""
    namespace = f"pb-{scenario.replace('_', '-')}-{run}"
    folder = WORK / "peers" / namespace
    shutil.rmtree(folder, ignore_errors=True)
    writer = EventWriter(plane, namespace)
    sinks = {name: WebhookSink() for name in names}
    started = [exporters.build(name, folder / name, plane.admin_kubeconfig, namespace,
                               sinks[name].url) for name in names]
    stream = Stream(writer, started, sinks, down_s)
    try:
        for exporter in started:
            exporter.start()
        stream.warm_up()
        SCENARIOS[scenario](stream)
    finally:
        for exporter in started:
            exporter.stop()
        for sink in sinks.values():
            sink.down()
        writer.close()
    figures = {}
    for exporter in started:
        delivered, duplicates = sinks[exporter.name].tally(writer.served)
        figures[exporter.name] = {
            "served": float(len(writer.served)), "delivered": float(delivered),
            "duplicates": float(duplicates), "peak_rss_mib": round(exporter.peak_rss_mib, 1),
            "cpu_s": round(exporter.cpu_s, 2)}
    return figures


def _render(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'scenario':<10} {'exporter':<13} {'delivered/served':>17} {'dups':>6} "
             f"{'peak MiB':>9} {'CPU s':>7}"]
    for scenario, per in results.items():
        for name, m in per.items():
            ratio = f"{m['delivered']:.0f}/{m['served']:.0f}"
            lines.append(f"{scenario:<10} {name:<13} {ratio:>17} "
                         f"{m['duplicates']:>6.0f} {m['peak_rss_mib']:>9.1f} {m['cpu_s']:>7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the medians with the machine, write bench/out/peers.json."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    missing = controlplane.missing_binaries()
    if missing:
        print(f"needs the control plane: {', '.join(missing)} missing (run `make kube`)")
        return 2
    names, notes = exporters.available()
    for note in notes:
        print(f"skipped {note}")
    host = machine.describe()
    print(machine.render(host))
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peers-kube-") as root:
        plane = controlplane.start(Path(root))
        try:
            for run in range(args.first_run, args.first_run + args.runs):
                for scenario in args.only.split(","):
                    print(f"-- {scenario} run {run + 1}", flush=True)
                    figures = run_scenario(plane, scenario, run, names, args.down)
                    for name, fig in figures.items():
                        runs.setdefault(scenario, {}).setdefault(name, []).append(fig)
                    print(_render({scenario: figures}).split("\n", 1)[1], flush=True)
        finally:
            plane.stop()
    results = {scenario: {name: {key: statistics.median(r[key] for r in rs) for key in FIGURES}
                          for name, rs in per.items()} for scenario, per in runs.items()}
    print(f"\nmedians of {args.runs} runs (kube-eventer --frequency="
          f"{exporters.KUBE_EVENTER_FREQUENCY}, receivers down {args.down:.0f} s)")
    print(_render(results))
    args.json.write_bytes(orjson.dumps(
        {"machine": host, "skipped": notes, "medians": results, "runs": runs},
        option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
