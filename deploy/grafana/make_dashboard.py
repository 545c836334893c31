"""Write the Grafana dashboard for stream-tagger (``stream-tagger.json`` beside this file).

    python3 deploy/grafana/make_dashboard.py

Generated so every panel has the same datasource, units and layout rules; tests/deploy checks that the
committed JSON equals this output and that every metric a query names is in a real worker scrape.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "stream-tagger.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
WIDTH, HEIGHT = 12, 8


def target(expr: str, legend: str = "", ref: str = "A", **extra: object) -> dict:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def panel(title: str, kind: str, targets: list[dict], unit: str = "short", description: str = "") -> dict:
    return {
        "title": title,
        "type": kind,
        "datasource": DATASOURCE,
        "description": description,
        "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }


def quantile(q: float, metric: str, *by: str) -> str:
    return f"histogram_quantile({q}, sum by ({', '.join(('le', *by))}) (rate({metric}_bucket{RATE})))"


def throughput() -> dict:
    return panel(
        "Throughput (events/s)",
        "timeseries",
        [
            target(f"sum(rate(stream_tagger_events_consumed_total{RATE}))", "consumed"),
            target(f"sum(rate(stream_tagger_events_tagged_total{RATE}))", "tagged"),
            target(f"sum(rate(stream_tagger_events_failed_total{RATE}))", "failed (DLQ)"),
        ],
        unit="ops",
    )


def lag_by_partition() -> dict:
    return panel(
        "Consumer lag by partition",
        "timeseries",
        [
            target("max by (topic, partition) (stream_tagger_consumer_lag)", "{{topic}}/{{partition}}"),
        ],
        description="Committed offset behind the end offset; KEDA scales on the same lag.",
    )


def stage_quantiles() -> dict:
    return panel(
        "Stage latency p50 / p99",
        "timeseries",
        [
            target(quantile(0.5, "stream_tagger_stage_seconds", "stage"), "p50 {{stage}}"),
            target(quantile(0.99, "stream_tagger_stage_seconds", "stage"), "p99 {{stage}}"),
        ],
        unit="s",
        description="SLO: p99 of stage=total under 2 s (docs/operations.md).",
    )


def stage_heatmap() -> dict:
    heatmap = panel(
        "Latency heatmap: stage $stage",
        "heatmap",
        [
            target(
                f'sum by (le) (increase(stream_tagger_stage_seconds_bucket{{stage="$stage"}}{RATE}))',
                "{{le}}",
                format="heatmap",
            ),
        ],
        unit="s",
    )
    heatmap["options"] = {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1}
    return heatmap


def dlq_by_code() -> dict:
    return panel(
        "DLQ by error code (events/s)",
        "timeseries",
        [
            target(f"sum by (code) (rate(stream_tagger_events_failed_total{RATE}))", "{{code}}"),
        ],
        unit="ops",
    )


def batch_size() -> dict:
    return panel(
        "Batch size",
        "timeseries",
        [
            target(f"sum(rate(stream_tagger_batch_size_sum{RATE}))"
                   f" / sum(rate(stream_tagger_batch_size_count{RATE}))", "mean"),
            target(quantile(0.99, "stream_tagger_batch_size"), "p99"),
            target("sum(stream_tagger_inflight_events)", "in flight (events)"),
        ],
    )


def engine_versions() -> dict:
    table = panel(
        "Engine versions and backend per pod",
        "table",
        [
            target(
                "max by (instance, engine, version, backend) (stream_tagger_engine_info)",
                "",
                format="table",
                instant=True,
            ),
        ],
        description="engine_info is 1 for the version each pod serves; reloads below.",
    )
    table["transformations"] = [
        {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}
    ]
    return table


def backends() -> dict:
    return panel(
        "Backends: engines and decoded frames",
        "timeseries",
        [
            target("count by (backend) (stream_tagger_engine_info)", "engines on {{backend}}"),
            target(
                f"sum by (backend) (rate(stream_tagger_decode_frames_total{RATE}))",
                "frames/s decoded by {{backend}}",
            ),
            target("sum(increase(stream_tagger_engine_reloads_total[1h]))", "engine reloads (1 h)"),
        ],
    )


def layout(panels: list[dict]) -> list[dict]:
    """Two panels per row, ids in order."""
    for index, item in enumerate(panels):
        item["id"] = index + 1
        item["gridPos"] = {"h": HEIGHT, "w": WIDTH, "x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT}
    return panels


def variables() -> list[dict]:
    return [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {
            "name": "stage",
            "type": "query",
            "datasource": DATASOURCE,
            "label": "Stage",
            "refresh": 2,
            "query": {"query": "label_values(stream_tagger_stage_seconds_bucket, stage)", "refId": "stage"},
            "definition": "label_values(stream_tagger_stage_seconds_bucket, stage)",
            "current": {"text": "total", "value": "total"},
        },
    ]


def source_reads() -> dict:
    return panel(
        "Source reads: bytes per event and range requests",
        "timeseries",
        [
            target(quantile(0.5, "stream_tagger_fetch_bytes", "scheme"), "p50 bytes/event {{scheme}}"),
            target(quantile(0.99, "stream_tagger_fetch_bytes", "scheme"), "p99 bytes/event {{scheme}}"),
            target(
                f"sum by (scheme) (rate(stream_tagger_range_requests_total{RATE}))"
                f" / clamp_min(sum by (scheme) (rate(stream_tagger_fetch_bytes_count{RATE})), 1e-9)",
                "range requests/event {{scheme}}",
            ),
        ],
        unit="bytes",
        description="Only the header and early packets should travel: p99 in MB, not the upload's size.",
    )


def memory_confirmations() -> dict:
    return panel(
        "Online memory: confirmations (per s)",
        "timeseries",
        [
            target(f"sum(rate(stream_tagger_memory_confirmations_consumed_total{RATE}))", "consumed"),
            target(f"sum(rate(stream_tagger_memory_confirmations_added_total{RATE}))", "added to the bank"),
            target(f"sum(rate(stream_tagger_memory_confirmations_duplicate_total{RATE}))", "duplicate"),
            target(f"sum by (code) (rate(stream_tagger_memory_confirmations_rejected_total{RATE}))",
                   "rejected {{code}}"),
            target("sum(stream_tagger_memory_pending_confirmations)", "pending (not yet published)"),
        ],
        unit="ops",
        description="stream-tagger memory: confirmed labels of videos.labels.confirmed (docs/early_action.md).",
    )


def memory_bank() -> dict:
    return panel(
        "Online memory: bank size per class",
        "timeseries",
        [target("max by (label) (stream_tagger_memory_bank_vectors)", "{{label}}")],
        description="Vectors per class in the writer's bank; each class is bounded (oldest examples go first).",
    )


def memory_publishes() -> dict:
    return panel(
        "Online memory: versions published, refused by the guard, guard accuracy",
        "timeseries",
        [
            target("sum(increase(stream_tagger_memory_versions_published_total[1h]))", "published (1 h)"),
            target("sum(increase(stream_tagger_memory_publishes_refused_total[1h]))", "refused by the guard (1 h)"),
            target("max by (bank) (stream_tagger_memory_guard_accuracy)", "eval accuracy: {{bank}}"),
            target("sum(stream_tagger_memory_writer_active)", "active writers (1 expected)"),
        ],
    )


def dashboard() -> dict:
    panels = [
        throughput(),
        lag_by_partition(),
        stage_quantiles(),
        stage_heatmap(),
        dlq_by_code(),
        batch_size(),
        engine_versions(),
        backends(),
        source_reads(),
        memory_confirmations(),
        memory_bank(),
        memory_publishes(),
    ]
    return {
        "uid": "stream-tagger",
        "title": "stream-tagger",
        "tags": ["stream-tagger", "kafka"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "timezone": "utc",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "panels": layout(panels),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
