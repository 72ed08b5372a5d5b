"""How long a receiver that is back waits for eventpipe's next try, by `retry.maxBackoff`.

    python -m bench.backoff_wait [--outage 600] [--trials 20000] [caps in seconds ...]

While a receiver is down, its worker retries the same batch with the delays of
`eventpipe.core.backoff.exponential_backoff` (full jitter: each delay uniform in [0, cap], the
cap doubling from `retry.initialBackoff` 0.5 s up to `retry.maxBackoff`), each failed attempt
taking no time (a refused connection or a 503). This replays that schedule `trials` times for
an outage of `outage` seconds and prints the wait from the receiver's return to the first
attempt after it: the part of a drain the soak (bench/soak.py) sees as "first batch accepted",
with more samples than half-hour soaks can give. Once the cap is reached, the return falls in a
delay drawn from [0, cap] with a chance proportional to its length, so the mean wait is cap / 3
and the worst is cap.
"""

from __future__ import annotations

import argparse
import random
import statistics

from bench.latency import percentile
from eventpipe.core.backoff import exponential_backoff

INITIAL_S = 0.5


def wait_after(outage: float, cap: float, rng: random.Random) -> float:
    """One outage of `outage` s starting with a failed attempt: seconds from the receiver's
    return to the next attempt."""
    at = 0.0
    for delay in exponential_backoff(initial=INITIAL_S, maximum=cap, rng=rng):
        at += delay
        if at >= outage:
            return at - outage
    raise AssertionError("unreachable: the delays never end")


def waits(outage: float, cap: float, trials: int, seed: int = 1) -> dict[str, float]:
    """Median, p90, mean and max wait over `trials` replays."""
    rng = random.Random(seed)
    values = [wait_after(outage, cap, rng) for _ in range(trials)]
    return {"median_s": statistics.median(values), "p90_s": percentile(values, 90),
            "mean_s": statistics.fmean(values), "max_s": max(values)}


def main(argv: list[str] | None = None) -> int:
    """Print the wait for each cap."""
    parser = argparse.ArgumentParser(prog="python -m bench.backoff_wait", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=600.0, help="seconds down")
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("caps", type=float, nargs="*", default=[300.0, 60.0, 30.0, 10.0])
    args = parser.parse_args(argv)
    print(f"outage {args.outage:.0f} s, initialBackoff {INITIAL_S} s, {args.trials:,} trials")
    for cap in args.caps:
        w = waits(args.outage, cap, args.trials)
        print(f"maxBackoff {cap:5.0f} s: wait after return median {w['median_s']:5.1f} s, "
              f"p90 {w['p90_s']:5.1f} s, mean {w['mean_s']:5.1f} s, max {w['max_s']:5.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
