"""What the numbers were measured on: a throughput figure means little without the machine.

Everything is read from /proc and the interpreter, so it works in a container without tools.
"""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def describe() -> dict[str, object]:
    """CPU, cores, RAM, kernel, Python, SQLite and the libraries on the hot path."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "orjson": _version("orjson"),
        "aiosqlite": _version("aiosqlite"),
        "aiohttp": _version("aiohttp"),
    }


def render(machine: dict[str, object]) -> str:
    """Two readable lines for the console."""
    return (f"{machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
            f"Linux {machine['kernel']}\n"
            f"Python {machine['python']} ({machine['python_impl']}), SQLite {machine['sqlite']}, "
            f"orjson {machine['orjson']}, aiosqlite {machine['aiosqlite']}")
