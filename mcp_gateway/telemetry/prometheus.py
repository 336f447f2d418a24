"""The `/metrics` side: prometheus_client histograms in a private registry, summed over every worker process.

With `--workers N` a scrape reaches one random worker, so each worker must report the sum over all of them. The
supervisor (`serving.py`) sets `PROMETHEUS_MULTIPROC_DIR` to a fresh directory before it spawns the workers; every
worker then writes its values to its own mmap file there, and a render reads and sums all the files. Without that
variable the gateway is one process and renders its own in-memory values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("mcp_gateway")

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


class PrometheusExposition:
    """Creates the gateway's histograms and renders them for GET /metrics."""

    def __init__(self) -> None:
        # `_created` gauges add a series per label set and mean nothing summed over workers.
        prometheus_client.disable_created_metrics()
        # A private registry: the global one also carries process/GC collectors, which would repeat per worker.
        self._registry = CollectorRegistry(auto_describe=True)
        self._directory = os.environ.get(MULTIPROCESS_DIR_ENV) or None
        if self._directory:
            MultiProcessCollector(self._registry, path=self._directory)
        self._warned = False

    @property
    def multiprocess(self) -> bool:
        return self._directory is not None

    def histogram(self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
        # In multiprocess mode the values live in the directory's files, which the collector reads: registering the
        # histogram itself as well would report this worker's share twice.
        registry = None if self._directory else self._registry
        return Histogram(name, documentation, labelnames=labels, buckets=buckets, registry=registry)

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> Counter:
        return Counter(name, documentation, labelnames=labels, registry=None if self._directory else self._registry)

    def gauge(self, name: str, documentation: str) -> Gauge:
        """A gauge whose value over workers is their minimum (e.g. 1 = healthy everywhere, 0 = not somewhere)."""
        registry = None if self._directory else self._registry
        return Gauge(name, documentation, registry=registry, multiprocess_mode="min")

    def check_value_class(self) -> None:
        """Warn once if this process's values cannot reach the shared directory.

        prometheus_client chooses its value class once, when `prometheus_client.values` is first imported: a process
        that imported it before `PROMETHEUS_MULTIPROC_DIR` was set keeps in-memory values that no scrape sees.
        """
        if self._directory and not self._warned and not getattr(values.ValueClass, "_multiprocess", False):
            self._warned = True
            log.warning(
                "%s was set after prometheus_client was imported: this process's metrics will not appear in /metrics",
                MULTIPROCESS_DIR_ENV,
            )

    def render(self) -> bytes:
        return generate_latest(self._registry)
