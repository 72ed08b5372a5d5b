"""What each soak receiver got: one counter per served resourceVersion, so losses and
duplicates are exact, and the fake API server's send stamp of each version for latency.

The fake API server gives the soak's Events the consecutive resourceVersions
`first_rv .. first_rv + served - 1` (one new Event per revision, nothing else written), so a
bytearray indexed by revision counts every copy in one byte per Event.
"""

from __future__ import annotations

from typing import Any

STAMP_ANNOTATION = "eventpipe.bench/sent-at"


def stamp_of(event: dict[str, Any]) -> tuple[int, float]:
    """(resourceVersion, the fake API server's add time) of a delivered Event body."""
    meta = event["metadata"]
    return int(meta["resourceVersion"]), float(meta["annotations"][STAMP_ANNOTATION])


class VersionTally:
    """Copies received per served revision; anything outside the served range is `foreign`."""

    def __init__(self, first_rv: int, served: int) -> None:
        self.first_rv = first_rv
        self.served = served
        self._copies = bytearray(served)
        self.received = 0
        """Versions received, copies included."""
        self.distinct = 0
        self.foreign = 0

    def add(self, rv: int) -> None:
        """Count one received copy of revision `rv`."""
        self.received += 1
        index = rv - self.first_rv
        if not 0 <= index < self.served:
            self.foreign += 1
            return
        copies = self._copies[index]
        if copies == 0:
            self.distinct += 1
        if copies < 255:
            self._copies[index] = copies + 1

    @property
    def duplicates(self) -> int:
        """Extra copies of served versions."""
        return self.received - self.distinct - self.foreign

    def complete(self) -> bool:
        """Every served version arrived at least once."""
        return self.distinct == self.served

    def summary(self) -> dict[str, int]:
        """served / delivered / missing / duplicates / foreign."""
        return {"served": self.served, "delivered": self.distinct,
                "missing": self.served - self.distinct, "duplicates": self.duplicates,
                "foreign": self.foreign}
