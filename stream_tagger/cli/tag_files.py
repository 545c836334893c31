"""``stream-tagger tag FILE|URI...``: tag videos without Kafka, one JSON line per input, in order.

URIs (``file://``, ``http(s)://``, ``s3://``, ``gs://``) go through the worker's own URI policy
(roots, hosts, buckets, byte and time limits). A plain path names a file the operator chose: its
folder joins the roots for this run, and the same limits apply.
"""

from __future__ import annotations

import dataclasses
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stream_tagger.errors import DecodeFailed, EventError
from stream_tagger.records import InputEvent, Prepared, StageTimes, to_json_bytes
from stream_tagger.tagger import Tagger


def tag_files(tagger: Tagger, targets: list[str], batch_size: int, workers: int, title: str = "") -> int:
    """Print one tag record or error record per input; 0 once every input has its line."""
    inputs = [_Input.of(target) for target in targets]
    local_roots = tuple(dict.fromkeys(i.path.parent for i in inputs if i.path is not None))
    policy = tagger.uri_policy
    tagger.uri_policy = dataclasses.replace(policy, roots=policy.roots + local_roots)
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda i: _prepare(tagger, i, title), inputs))
    prepared = [o for o in outcomes if isinstance(o, Prepared)]
    records = {}
    for start in range(0, len(prepared), batch_size):
        chunk = prepared[start : start + batch_size]
        records.update(_infer(tagger, chunk))
    for outcome in outcomes:
        line = records[id(outcome)] if isinstance(outcome, Prepared) else outcome
        sys.stdout.buffer.write(to_json_bytes(line) + b"\n")
    sys.stdout.flush()
    return 0


@dataclasses.dataclass(frozen=True)
class _Input:
    target: str
    uri: str
    video_id: str
    path: Path | None  # set for a plain path

    @classmethod
    def of(cls, target: str) -> _Input:
        if "://" in target:
            stem = Path(target.split("?", 1)[0].rstrip("/")).stem
            return cls(target, target, stem or "video", None)
        path = Path(target).absolute()
        try:
            resolved = path.resolve()
        except (OSError, ValueError):
            resolved = path
        return cls(target, resolved.as_uri() if resolved.is_absolute() else target, path.stem or "video", resolved)


def _prepare(tagger: Tagger, item: _Input, title: str) -> Prepared[_Input] | dict[str, Any]:
    try:
        event = InputEvent(video_id=item.video_id, uri=item.uri, title=title)
        return tagger.prepare(event, item, StageTimes())
    except EventError as exc:
        return _error(item, exc)
    except Exception as exc:  # every input gets its line
        return _error(item, DecodeFailed(f"unexpected: {exc}"))


def _infer(tagger: Tagger, chunk: list[Prepared[_Input]]) -> dict[int, dict[str, Any]]:
    try:
        return {id(item): record for item, record in zip(chunk, tagger.infer(chunk), strict=True)}
    except EventError as exc:
        return {id(item): _error(item.message, exc) for item in chunk}


def _error(item: _Input, exc: EventError) -> dict[str, Any]:
    return {
        "video_id": item.video_id,
        "file": item.target,
        "code": exc.code,
        "message": str(exc),
        "attempts": getattr(exc, "attempts", 1),
    }
