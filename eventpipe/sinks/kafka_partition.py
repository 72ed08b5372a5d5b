"""Kafka's default key → partition mapping, fast enough for the hot path.

aiokafka's pure-Python murmur2 masks every intermediate value and reads one byte at a time,
which made it the largest cost in delivering to Kafka (docs/performance.md). This is the same
function (Java client's `Utils.murmur2`, so records land on the partitions any other Kafka
client would choose for the same key) reading 4-byte words with `struct` and masking only where
a value can leave 32 bits. Equality with aiokafka's version is
tested.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data`: the bits of Java's `Utils.murmur2`, as an unsigned int
    (as aiokafka returns it)."""
    length = len(data)
    h = _SEED ^ length
    words = length // 4
    for (k,) in struct.iter_unpack("<I", data[: words * 4]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = words * 4
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


class KeyPartitioner:
    """`AIOKafkaProducer(partitioner=...)`: aiokafka's DefaultPartitioner with this murmur2."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        """The partition for `key`; a record without a key goes to a random live partition."""
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
