"""The soak's samples and how they are printed: one row per interval, then the totals."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.latency import percentile

if TYPE_CHECKING:
    from bench.soak_hook import SoakHook
    from bench.soak_probe import SoakProbe
    from bench.soak_tally import VersionTally


@dataclass(frozen=True)
class Interval:
    """One sample: the state at its end, and what happened since the previous one."""

    end_s: float
    """Seconds since the fake API server started adding Events."""
    rss_mib: float
    cpu_s: float
    """eventpipe's CPU seconds (user + system) during the interval."""
    spool_rows: int
    hook_backlog: int
    hook_down: bool
    file_lines: int
    """Lines the file receiver wrote during the interval."""
    file_p50_ms: float
    file_p99_ms: float
    file_delivered: int
    hook_delivered: int
    """Distinct versions each receiver holds so far."""
    hook_503s: int
    load: float
    """The machine's 1-minute load average."""

    @classmethod
    def sample(cls, *, end_s: float, rss_mib: float, cpu_s: float, probe: SoakProbe,
               hook: SoakHook, file_tally: VersionTally, latencies: list[float],
               load: float) -> Interval:
        """Take one sample; `latencies` are the interval's watch → file latencies (s)."""
        rows, backlog = probe.rows_and_backlog()
        return cls(end_s=end_s, rss_mib=rss_mib, cpu_s=cpu_s, spool_rows=rows,
                   hook_backlog=backlog, hook_down=hook.is_down, file_lines=len(latencies),
                   file_p50_ms=percentile(latencies, 50) * 1000 if latencies else 0.0,
                   file_p99_ms=percentile(latencies, 99) * 1000 if latencies else 0.0,
                   file_delivered=file_tally.distinct, hook_delivered=hook.tally.distinct,
                   hook_503s=hook.refused, load=load)


_HEADER = ("   t (s)  RSS MiB  CPU s  spool rows  hook backlog  hook  file lines  "
           "p50 ms  p99 ms  load")


def header(o: dict[str, Any]) -> str:
    """What ran, and the column names of the table."""
    return (f"soak: {o['rate']:,} events/s for {o['minutes']:g} min, webhook answering 503 "
            f"from minute {o['down_from']:g} for {o['down_for']:g} min "
            f"(retry.maxBackoff {o['max_backoff'] or 'default'})\n{_HEADER}")


def row(i: dict[str, Any]) -> str:
    """One interval's line of the table."""
    return (f"{i['end_s']:8.0f}  {i['rss_mib']:7.1f}  {i['cpu_s']:5.1f}  {i['spool_rows']:10,}  "
            f"{i['hook_backlog']:12,}  {'down' if i['hook_down'] else 'up':>4}  "
            f"{i['file_lines']:10,}  {i['file_p50_ms']:6.0f}  {i['file_p99_ms']:6.0f}  "
            f"{i['load']:4.1f}")


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def flatness(result: dict[str, Any]) -> dict[str, float | None]:
    """What "flat" is judged on: the median VmRSS sample of minutes 5–10 and of the last 10
    minutes, and the median per-interval p99 watch → file latency before the outage, during it
    and after (None where a short run has no such interval)."""
    intervals, o = result["intervals"], result["options"]
    end = intervals[-1]["end_s"] if intervals else 0.0
    down, up = o["down_from"] * 60, (o["down_from"] + o["down_for"]) * 60

    def pick(key: str, low: float, high: float) -> float | None:
        return _median([i[key] for i in intervals if low < i["end_s"] <= high and i["file_lines"]])

    return {"rss_min5_10_mib": pick("rss_mib", 300, 600),
            "rss_last10_mib": pick("rss_mib", max(600, end - 600), end),
            "p99_before_ms": pick("file_p99_ms", 0, down),
            "p99_down_ms": pick("file_p99_ms", down + o["sample_every"], up),
            "p99_after_ms": pick("file_p99_ms", up + o["sample_every"], end)}


def summary(result: dict[str, Any]) -> str:
    """The totals of one soak: RSS, CPU, per-receiver counts, the drain."""
    rss = [i["rss_mib"] for i in result["intervals"]]
    lines = [
        f"RSS first / last / max sample {rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f} MiB, "
        f"peak (VmHWM) {result['peak_rss_mib']:.1f} MiB; CPU {result['cpu_s']:.0f} s "
        f"({result['cpu_us_per_event']:.0f} µs/event)",
    ]
    flat = {k: "n/a" if v is None else f"{v:.1f}" for k, v in flatness(result).items()}
    lines.append(f"median RSS minutes 5–10 {flat['rss_min5_10_mib']} MiB, last 10 minutes "
                 f"{flat['rss_last10_mib']} MiB; median p99 watch → file before the outage "
                 f"{flat['p99_before_ms']} ms, during it {flat['p99_down_ms']} ms, after "
                 f"{flat['p99_after_ms']} ms")
    for name in ("file", "hook"):
        t = result[name]
        lines.append(f"{name:4}: served {t['served']:,}, delivered {t['delivered']:,}, missing "
                     f"{t['missing']:,}, duplicates {t['duplicates']:,}, unknown {t['foreign']:,}")
    lines.append(f"hook: {result['hook_503s']:,} attempts answered 503 while down; after its "
                 f"return first batch accepted {_seconds(result['first_accept_after_return_s'])}"
                 f", caught up (newest event current) {_seconds(result['drain_s'])}")
    return "\n".join(lines)
