"""JSON bytes that are kept: serialised with orjson, stored in an object of their own size.

Since orjson 3.12 the bytes `orjson.dumps` returns keep the whole write buffer it grew (4 kB
at least, a power of two above that): `len()` and `sys.getsizeof` report the JSON's length,
while the allocation behind a 1 kB Event body is ~9 kB (tracemalloc; 20,000 such results
held 156 MiB of RSS, right-sized copies 15 MiB — docs/performance.md). A result used and
dropped at once costs nothing; one that waits in a buffer (a relisted Event's body until its
commit, an encoded payload until its batch is sent) holds the whole buffer. `dumps_kept`
copies it into right-sized bytes: ~0.2 µs for a 1 kB Event, against ~8 kB saved.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps_kept(value: Any, option: int | None = None) -> bytes:
    """`orjson.dumps(value, option=option)` as bytes sized to the JSON, for results that are
    held (raises what orjson.dumps raises)."""
    return bytes(memoryview(orjson.dumps(value, option=option)))
