"""`make bench`: run the measurements, print medians with the machine, write JSON.

    python -m bench.run [--runs 3] [--events 200000] [--only raw,ingest,latency,rss,loki,...]
    python -m bench.run --only soak [--minutes 30 --down-from 10 --down-for 10 --soak-rate 1000]

Each measurement runs `--runs` times and the median of every figure is quoted (the single
runs are kept in the JSON). Targets are the ones docs/performance.md lists; a missed one is flagged
but does not fail the command, since a benchmark reports, it does not gate. `soak` (30 minutes,
run once: bench/soak.py) is not in the default set; `--only soak` runs it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench import ingest, latency, layout, machine, raw, rss, startup
from bench.common import OUT, WORK
from bench.events import watch_lines

MEASUREMENTS = ("raw", "ingest", "latency", "rss", "rss_steady", "idle", "relist", "loki",
                "kafka", "history", "layout", "enrich", "realkube")
ON_REQUEST = ("soak",)
"""Measurements `--only` can name that the default set leaves out (they take too long)."""


DELIVERY_EVENTS = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--events", type=int, default=200_000, help="events per burst")
    parser.add_argument("--only", default=",".join(MEASUREMENTS),
                        help="comma-separated subset of " + ",".join(MEASUREMENTS + ON_REQUEST))
    parser.add_argument("--rate", type=int, default=2_000, help="latency: events/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: duration")
    parser.add_argument("--spool-events", type=int, default=1_000_000,
                        help="rss: rows pre-filled into the spool")
    parser.add_argument("--relist-events", type=int, default=startup.RELIST_EVENTS,
                        help="relist: Events the API server holds before eventpipe starts")
    parser.add_argument("--minutes", type=float, default=30.0, help="soak: duration")
    parser.add_argument("--down-from", type=float, default=10.0,
                        help="soak: minute the webhook starts answering 503")
    parser.add_argument("--down-for", type=float, default=10.0,
                        help="soak: minutes the webhook stays down")
    parser.add_argument("--soak-rate", type=int, default=1_000, help="soak: events/s")
    parser.add_argument("--keep-prefill", action="store_true",
                        help="rss: keep the pre-filled spool in bench/out/work for next time")
    return parser.parse_args(argv)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the runs."""
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _timed(title: str, fn: Callable[[], Any]) -> Any:
    print(f"-- {title} ...", flush=True)
    started = time.perf_counter()
    result = fn()
    print(f"   done in {time.perf_counter() - started:.0f} s", flush=True)
    return result


def check(name: str, ok: bool, detail: str) -> dict[str, object]:
    """One target verdict, printed and kept in the JSON."""
    print(f"  [{'PASS' if ok else 'MISS'}] {name}: {detail}")
    return {"target": name, "met": ok, "detail": detail}


def report_enrich(e: dict[str, Any]) -> list[dict[str, object]]:
    """The enrichment figures and their two targets."""
    on, off = e["on"], e["off"]
    for where in ("spool", "file"):
        key = f"{where}_cpu_us_per_event"
        pairs = "; ".join(f"{a[key]:.1f} / {b[key]:.1f}"
                          for a, b in zip(e["runs_on"], e["runs_off"], strict=True))
        print(f"enrich        →{where}: CPU µs/event on / off per pair {pairs}; median cost "
              f"{e[f'{where}_cost_percent']:.1f} %")
    print(f"enrich        on {on['file_events_per_s']:,.0f} / off {off['file_events_per_s']:,.0f}"
          f" events/s →file, {on['enriched_share']:.2%} "
          f"enriched, {on['object_gets']:.0f} GETs, {on['list_watch_requests']:.0f} list/watch"
          f" requests, peak RSS {on['peak_rss_mib']:.0f} / {off['peak_rss_mib']:.0f} MiB, cache "
          f"{e['cache_memory']['mib_per_10000_pods']:.1f} MiB per 10,000 pods")
    return [check("enriched >= 99 %", on["enriched_share"] >= 0.99,
                  f"{on['enriched_share']:.2%}"),
            check("enrichment costs <= 15 % of ingest (CPU/event, spool and file)",
                  e["cost_percent"] <= 15,
                  f"{e['spool_cost_percent']:.1f} % / {e['file_cost_percent']:.1f} %")]


def _ratios(runs: list[dict[str, float]], key: str) -> str:
    return " / ".join(f"{run[key]:.2f}" for run in runs)


def report_soak(soak: dict[str, Any]) -> list[dict[str, object]]:
    """The soak's summary, and its verdicts: RSS flat, every version delivered once."""
    from bench.soak_report import flatness, summary

    print(summary(soak))
    flat = flatness(soak)
    verdicts = [check("soak: every served version delivered once to both receivers",
                      all(soak[r]["missing"] == soak[r]["duplicates"] == 0
                          for r in ("file", "hook")),
                      f"file {soak['file']}, hook {soak['hook']}")]
    before, last = flat["rss_min5_10_mib"], flat["rss_last10_mib"]
    if before is not None and last is not None:
        verdicts.append(check("soak: RSS of the last 10 minutes within 5 MiB of minutes 5–10",
                              abs(last - before) <= 5, f"{before:.1f} → {last:.1f} MiB"))
    return verdicts


def report(results: dict[str, Any]) -> list[dict[str, object]]:
    """Print the medians and the verdicts against the targets."""
    verdicts = []
    m = {k: v["median"] for k, v in results.items() if isinstance(v, dict) and "median" in v}
    if "raw" in m:
        r = m["raw"]
        print(f"raw ceiling   {r['events_per_s']:>9,.0f} events/s in memory, no HTTP "
              f"(parse+normalise "
              f"{r['parse_only_events_per_s']:,.0f}/s, "
              f"insert {r['insert_only_events_per_s']:,.0f}/s); in-memory e2e "
              f"ceiling (+ file write) {r['e2e_events_per_s']:,.0f} events/s")
    if "ingest" in m:
        i = m["ingest"]
        print(f"ingest        {i['spool_events_per_s']:>9,.0f} events/s watch→spool, "
              f"{i['file_events_per_s']:,.0f} events/s →file, "
              f"peak RSS {i['peak_rss_mib']:.0f} MiB, CPU {i['cpu_us_per_event']:.1f} µs/event")
        print(f"reference     {i['ref_spool_events_per_s']:>9,.0f} events/s watch→store "
              f"(peak RSS {i['ref_spool_peak_rss_mib']:.0f} MiB, CPU "
              f"{i['ref_spool_cpu_us_per_event']:.1f} µs/event), "
              f"{i['ref_file_events_per_s']:,.0f} events/s →file (peak RSS "
              f"{i['ref_file_peak_rss_mib']:.0f} MiB, CPU {i['ref_file_cpu_us_per_event']:.1f} "
              f"µs/event); ratios per round: ingest "
              f"{_ratios(results['ingest']['runs'], 'ingest_ratio')}, end to end "
              f"{_ratios(results['ingest']['runs'], 'e2e_ratio')}")
        verdicts.append(check("ingest >= 20,000 events/s", i["spool_events_per_s"] >= 20_000,
                              f"{i['spool_events_per_s']:,.0f} events/s"))
        verdicts.append(check("ingest >= 0.9 x the durable reference", i["ingest_ratio"] >= 0.9,
                              f"{i['ingest_ratio']:.2f} x (median of the rounds)"))
        verdicts.append(check("end to end >= 0.8 x the durable reference",
                              i["e2e_ratio"] >= 0.8,
                              f"{i['e2e_ratio']:.2f} x (median of the rounds)"))
        if "raw" in m:
            share = i["spool_events_per_s"] / m["raw"]["events_per_s"]
            print(f"              ingest / in-memory raw ceiling {share:.2f} x, end to end / "
                  f"in-memory e2e ceiling "
                  f"{i['file_events_per_s'] / m['raw']['e2e_events_per_s']:.2f} x")
    if "latency" in m:
        lat = m["latency"]
        print(f"latency       p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
              f"max {lat['max_ms']:.0f} ms at {lat['sent_events_per_s']:,.0f} events/s "
              f"(peak RSS {lat['peak_rss_mib']:.0f} MiB)")
        verdicts.append(check("latency p99 <= 250 ms", lat["p99_ms"] <= 250,
                              f"{lat['p99_ms']:.0f} ms"))
    if "enrich" in results:
        verdicts.extend(report_enrich(results["enrich"]))
    if "rss" in m:
        s = m["rss"]
        print(f"rss           peak {s['peak_rss_mib']:.0f} MiB with "
              f"{results['rss']['spool_events']:,} events in the spool during a "
              f"{results['rss']['burst_events']:,}-event burst "
              f"({s['rss_at_watch_open_mib']:.0f} MiB at watch open, start-up "
              f"{s['startup_seconds']:.1f} s)")
        verdicts.append(check("peak RSS <= 96 MiB with 1M events spooled, 200k burst",
                              s["peak_rss_mib"] <= 96, f"{s['peak_rss_mib']:.0f} MiB"))
        verdicts.append(check("restart with 1M events spooled watching in < 2 s",
                              s["startup_seconds"] < 2, f"{s['startup_seconds']:.1f} s"))
    if "rss_steady" in m:
        st = m["rss_steady"]
        print(f"rss steady    peak {st['peak_rss_mib']:.0f} MiB with "
              f"{results['rss_steady']['spool_events']:,} events in the spool at a steady "
              f"2,000 events/s for 20 s")
        verdicts.append(check("peak RSS <= 70 MiB with 1M events spooled, steady 2,000/s",
                              st["peak_rss_mib"] <= 70, f"{st['peak_rss_mib']:.0f} MiB"))
    if "idle" in m:
        idle = m["idle"]
        print(f"idle          RSS {idle['idle_rss_mib']:.0f} MiB once ready "
              f"({idle['ready_seconds']:.1f} s after launch, empty spool)")
    if "relist" in m:
        rl = m["relist"]
        print(f"relist        {results['relist']['events']:,} events stored in "
              f"{rl['stored_seconds']:.1f} s, delivered in {rl['delivered_seconds']:.1f} s from "
              f"launch (peak RSS {rl['peak_rss_mib']:.0f} MiB)")
        verdicts.append(check("relist stored and delivered in < 10 s",
                              rl["delivered_seconds"] < 10, f"{rl['delivered_seconds']:.1f} s"))
    if "loki" in m:
        lk = m["loki"]
        print(f"loki          {lk['events_per_s']:>9,.0f} events/s delivered to the fake Loki "
              f"(batches of {lk['batch_size']:.0f}, {lk['requests']:.0f} pushes)")
        verdicts.append(check("Loki delivery >= 20,000 events/s", lk["events_per_s"] >= 20_000,
                              f"{lk['events_per_s']:,.0f} events/s"))
    if "kafka" in results:
        k = results["kafka"]
        print(f"kafka         {k['median_events_per_s']:>9,} events/s delivered to tansu "
              f"(batches of {k['batch_max_events']}, linger {k['linger_ms']} ms; runs "
              f"{k['runs_events_per_s']})")
        verdicts.append(check("Kafka delivery >= 20,000 events/s",
                              k["median_events_per_s"] >= 20_000,
                              f"{k['median_events_per_s']:,} events/s"))
    if "layout" in m:
        lay = m["layout"]
        print("layout        " + ", ".join(f"{k.removesuffix('_renders_per_s')} {v:,.0f}/s"
                                           for k, v in lay.items()) + " rendered")
        verdicts.append(check("5-field layout >= 50,000 renders/s",
                              lay[layout.TARGET_KEY] >= layout.TARGET,
                              f"{lay[layout.TARGET_KEY]:,.0f} renders/s"))
    if "realkube" in results:
        from bench.realkube import render_step

        rk = results["realkube"]
        print(f"realkube      control plane {rk['kube_version']}, sustained "
              f"{rk['sustained_rate']:.0f} Events/s created through the API:")
        for line in map(render_step, rk["steps"]):
            print(line)
    if "soak" in results:
        verdicts.extend(report_soak(results["soak"]))
    if "history" in results:
        h = results["history"]["median"]
        print("history       " + ", ".join(f"{k.removesuffix('_s')} {v * 1000:.0f} ms"
                                           for k, v in h.items())
              + f" ({results['history']['spool_events']:,} events spooled)")
        slowest = max(h.values())
        verdicts.append(check("history queries < 1 s with 1M events spooled", slowest < 1.0,
                              f"slowest {slowest * 1000:.0f} ms"))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """Run, print, write bench/out/results.json."""
    args = parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(MEASUREMENTS + ON_REQUEST)
    if unknown:
        raise SystemExit(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    host = machine.describe()
    print(machine.render(host), flush=True)
    results: dict[str, Any] = {"machine": host, "runs": args.runs, "events": args.events}
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        if "raw" in chosen:
            lines = _timed("preparing watch lines", lambda: watch_lines(args.events))
            runs = _timed("raw ceiling", lambda: raw.measure(lines, args.runs))
            del lines
            results["raw"] = {"median": medians(runs), "runs": runs}
        if "ingest" in chosen:
            runs = _timed("ingest", lambda: ingest.measure(args.events, args.runs))
            results["ingest"] = {"median": medians(runs), "runs": runs}
        if "latency" in chosen:
            runs = _timed("latency", lambda: latency.measure(args.rate, args.seconds, args.runs))
            results["latency"] = {"median": medians(runs), "runs": runs, "rate": args.rate,
                                  "seconds": args.seconds}
        if "rss" in chosen:
            prefill_s, runs = _timed("rss", lambda: rss.measure(args.spool_events, args.events,
                                                                args.runs))
            results["rss"] = {"median": medians(runs), "runs": runs, "prefill_seconds": prefill_s,
                              "spool_events": args.spool_events, "burst_events": args.events}
        if "rss_steady" in chosen:
            prefill_s, runs = _timed("rss at a steady 2,000 events/s", lambda: rss.measure(
                args.spool_events, args.events, args.runs, steady=True))
            results["rss_steady"] = {"median": medians(runs), "runs": runs,
                                     "spool_events": args.spool_events}
        if "idle" in chosen:
            runs = _timed("idle RSS", lambda: startup.measure_idle(args.runs))
            results["idle"] = {"median": medians(runs), "runs": runs}
        if "relist" in chosen:
            runs = _timed("relist", lambda: startup.measure_relist(args.relist_events,
                                                                   args.runs))
            results["relist"] = {"median": medians(runs), "runs": runs,
                                 "events": args.relist_events}
        if "loki" in chosen:
            from bench import delivery_loki

            runs = _timed("delivery to fake Loki", lambda: [
                delivery_loki.run(DELIVERY_EVENTS) for _ in range(args.runs)])
            results["loki"] = {"median": medians(runs), "runs": runs}
        if "history" in chosen:
            from bench import history

            results["history"] = _timed("history queries", lambda: history.measure(
                args.spool_events, max(args.runs, 5)))
        if "layout" in chosen:
            runs = _timed("layout rendering", lambda: layout.measure(args.runs))
            results["layout"] = {"median": medians(runs), "runs": runs}
        if "enrich" in chosen:
            from bench import enrich

            results["enrich"] = _timed("enrichment on/off, 10,000 pods, 50,000 events",
                                       lambda: enrich.measure(args.runs))
            results["enrich"]["cache_memory"] = enrich.cache_memory()
        if "kafka" in chosen:
            from bench import delivery_kafka

            results["kafka"] = _timed("delivery to tansu Kafka",
                                      lambda: delivery_kafka.run(DELIVERY_EVENTS))
        if "realkube" in chosen:
            from bench import realkube
            from tests.realkube.controlplane import missing_binaries

            if missing_binaries():
                print("-- realkube skipped: the control plane is not built (`make kube`)")
            else:
                results["realkube"] = _timed("real API server, steady creates", lambda:
                                             realkube.measure(realkube.DEFAULT_RATES, 15.0))
        if "soak" in chosen:
            from bench import soak

            options = soak.SoakOptions(minutes=args.minutes, down_from=args.down_from,
                                       down_for=args.down_for, rate=args.soak_rate)
            results["soak"] = _timed("soak", lambda: soak.run(options, WORK / "soak"))
    finally:
        if not args.keep_prefill:
            shutil.rmtree(WORK, ignore_errors=True)
    print()
    print(machine.render(host))
    results["targets"] = report(results)
    path = OUT / "results.json"
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {path.relative_to(OUT.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
