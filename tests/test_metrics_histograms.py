"""observe_repeated / observe_runs against prometheus-client's own `observe`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from eventpipe.metrics.histograms import observe_repeated, observe_runs

BUCKETS = (0.01, 0.1, 1.0, 10.0)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    return (ours, Histogram("lat", "x", ["r"], buckets=BUCKETS, registry=ours),
            theirs, Histogram("lat", "x", ["r"], buckets=BUCKETS, registry=theirs))


def test_repeated_value_matches_that_many_observe_calls() -> None:
    ours, mine, theirs, reference = _pair()
    for amount, count in ((0.005, 3), (0.5, 7), (10.0, 2), (50.0, 4), (0.1, 1), (1.0, 0)):
        observe_repeated(mine.labels("a"), amount, count)
        for _ in range(count):
            reference.labels("a").observe(amount)
    assert _samples(ours) == _samples(theirs)
    assert _samples(ours)[("lat_count", (("r", "a"),))] == 17


def test_runs_of_values_match_observing_each() -> None:
    ours, mine, theirs, reference = _pair()
    amounts = [0.2, 0.2, 0.2, 3.0, 3.0, 0.2, 0.001, 99.0, 99.0]
    observe_runs(mine.labels("b"), iter(amounts))
    observe_runs(mine.labels("b"), [])
    for amount in amounts:
        reference.labels("b").observe(amount)
    assert _samples(ours) == _samples(theirs)
