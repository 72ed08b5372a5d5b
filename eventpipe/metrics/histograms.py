"""Observing one value many times in a prometheus-client Histogram at the cost of one.

Delivery observes the latency of every event it delivers, and the events of one batch come
from a few spool commits, which share their `observed_at`: a batch of 500 is two or three
distinct latencies. `Histogram.observe` takes a lock per bucket and per sum update and has no
weight argument, so 500 calls cost ~0.5 µs each on the hot path for what is two or three
values. prometheus-client keeps a child's sum, per-bucket counts (not cumulative) and upper
bounds in `_sum`, `_buckets` and `_upper_bounds`; `observe_repeated` updates those exactly as
`count` calls of `observe` would. A test (tests/test_metrics_histograms.py) compares it with
`observe` on a real Histogram, so a prometheus-client that moves them fails there, loudly.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Histogram


def observe_repeated(child: Histogram, amount: float, count: int) -> None:
    """Record `amount` as observed `count` times in a labelled Histogram child."""
    if count <= 0:
        return
    child._sum.inc(amount * count)
    for bucket, bound in zip(child._buckets, child._upper_bounds, strict=True):
        if amount <= bound:
            bucket.inc(count)
            break


def observe_runs(child: Histogram, amounts: Iterable[float]) -> None:
    """Observe each of `amounts`, one update per run of equal consecutive values."""
    run_value: float | None = None
    run_length = 0
    for amount in amounts:
        if amount == run_value:
            run_length += 1
            continue
        if run_value is not None:
            observe_repeated(child, run_value, run_length)
        run_value, run_length = amount, 1
    if run_value is not None:
        observe_repeated(child, run_value, run_length)
