"""Open the spool a config names (shared by `run`, `replay` and `spool stats`; kept apart from
app.py so the light commands do not import the Kubernetes client)."""

from __future__ import annotations

import logging

from eventpipe.config import Config
from eventpipe.metrics import Metrics
from eventpipe.spool.spool import Spool

log = logging.getLogger("eventpipe.spool")


async def open_spool(config: Config, metrics: Metrics | None = None) -> Spool:
    """Open the spool the config names, counting and logging drops."""

    def dropped(count: int, reason: str) -> None:
        if metrics is not None:
            metrics.spool_dropped.labels(reason).inc(count)
        log.warning("events dropped from the spool", extra={"count": count, "reason": reason})

    spool_cfg = config.spool
    return await Spool.open(
        spool_cfg.path, synchronous=spool_cfg.synchronous, max_bytes=spool_cfg.max_bytes,
        when_full=spool_cfg.when_full, history_window=spool_cfg.history_window,
        on_drop=dropped, writer_cache_kib=spool_cfg.writer_cache_size // 1024,
        reader_cache_kib=spool_cfg.reader_cache_size // 1024,
        occurrence_book_max_uids=spool_cfg.occurrence_book_max_uids,
        occurrence_book_recent_uids=spool_cfg.occurrence_book_recent_uids)
