"""Prometheus text exposition of the service's own metrics, from a monitor snapshot.

Ray Serve's built-in metrics (request counts, latencies, replica counts, ``serve_batch_*``)
are exported by Ray's metrics agent on each node's metrics port. These are the application's
metrics, served at ``GET /metrics`` of the ingress: the fairness window per identity group
(texts, positives, positive rate against the rest, p-value, alert flag), its decisions per
group and class (label ``class``: the class name), and service counters. "Positive" is class
1 of a binary model, the focus class of a K-class one (``debias_model_info``'s
``positive_class`` label).
They come from the single ``DecisionMonitor`` replica, so every scrape sees the whole service.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _SnapshotCollector:
    def __init__(self, snap: dict[str, Any], model_version: str) -> None:
        self.snap = snap
        self.model_version = model_version

    def collect(self):
        s = self.snap
        info = GaugeMetricFamily("debias_model_info", "Model served (value is always 1)",
                                 labels=["model_version", "positive_class"])
        info.add_metric([self.model_version, s["positive_class"]], 1)
        yield info
        classes = s["classes"]

        texts = CounterMetricFamily("debias_texts", "Texts classified since the monitor started")
        texts.add_metric([], s["texts_total"])
        yield texts
        pos = CounterMetricFamily("debias_positive_decisions", "Positive decisions since start")
        pos.add_metric([], s["positives_total"])
        yield pos
        dec = CounterMetricFamily("debias_decisions", "Decisions per class since start", labels=["class"])
        for name, n in zip(classes, s["decisions_total"], strict=True):
            dec.add_metric([name], n)
        yield dec
        rej = CounterMetricFamily("debias_requests_rejected", "Requests refused with a 4xx",
                                  labels=["reason"])
        for reason, n in s["rejects"].items():
            rej.add_metric([reason], n)
        yield rej

        # Batch sizes seen by the model: a histogram of texts per forward call.
        sizes = {int(k): v for k, v in s["batch_sizes"].items()}
        buckets = [(str(b), sum(v for k, v in sizes.items() if k <= b)) for b in BATCH_BUCKETS]
        buckets.append(("+Inf", sum(sizes.values())))
        hist = HistogramMetricFamily("debias_batch_size", "Texts per model forward call")
        hist.add_metric([], buckets, sum_value=float(sum(k * v for k, v in sizes.items())))
        yield hist

        counts = s["counts"]
        win = GaugeMetricFamily("debias_monitor_window_texts", "Texts in the fairness window")
        win.add_metric([], counts["n"])
        yield win
        winp = GaugeMetricFamily("debias_monitor_window_positives", "Positive decisions in the window")
        winp.add_metric([], counts["positives"])
        yield winp
        by_class = s["class_counts"]
        winc = GaugeMetricFamily("debias_monitor_window_class_decisions", "Decisions per class in the window",
                                 labels=["class"])
        for name, n in zip(classes, by_class["overall"], strict=True):
            winc.add_metric([name], n)
        yield winc
        gc = GaugeMetricFamily("debias_monitor_group_class_decisions",
                               "Decisions per class on texts in the window mentioning the group",
                               labels=["group", "class"])
        for group, row in by_class["by_group"].items():
            for name, n in zip(classes, row, strict=True):
                gc.add_metric([group, name], n)
        yield gc

        fams = {
            "n": GaugeMetricFamily("debias_monitor_group_texts",
                                   "Texts in the window mentioning the group", labels=["group"]),
            "positives": GaugeMetricFamily("debias_monitor_group_positives",
                                           "Positive decisions on texts mentioning the group",
                                           labels=["group"]),
            "positive_rate": GaugeMetricFamily("debias_monitor_group_positive_rate",
                                               "Positive rate on texts mentioning the group",
                                               labels=["group"]),
            "rest_positive_rate": GaugeMetricFamily("debias_monitor_rest_positive_rate",
                                                    "Positive rate on texts not mentioning the group",
                                                    labels=["group"]),
            "p_value": GaugeMetricFamily("debias_monitor_group_p_value",
                                         "Two-proportion test p-value, group vs rest", labels=["group"]),
            "alert": GaugeMetricFamily("debias_monitor_group_alert",
                                       "1 when the gap exceeds the bound with p < alpha",
                                       labels=["group"]),
        }
        for row in s["groups"]:
            for key, fam in fams.items():
                v = row[key]
                fam.add_metric([row["group"]], math.nan if v is None else float(v))
        yield from fams.values()


def render_metrics(snapshot: dict[str, Any], *, model_version: str) -> tuple[bytes, str]:
    """``(body, content type)`` of the Prometheus text format for one monitor snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, model_version))
    return generate_latest(registry), CONTENT_TYPE_LATEST
