"""``stream-tagger tag FILE...``: tag local files without Kafka, one JSON line per input, in order."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stream_tagger.errors import DecodeFailed, EventError, FetchFailed
from stream_tagger.records import InputEvent, Prepared, StageTimes, to_json_bytes
from stream_tagger.tagger import Tagger


def tag_files(tagger: Tagger, files: list[str], batch_size: int, workers: int, title: str = "") -> int:
    """Print one tag record or error record per file; 0 once every file has its line."""
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda f: _prepare(tagger, f, title), files))
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


def _prepare(tagger: Tagger, file: str, title: str) -> Prepared[Path] | dict[str, Any]:
    path = Path(file).absolute()
    try:
        event = InputEvent(video_id=path.stem or "video", uri=path.as_uri(), title=title)
        return tagger.prepare(event, path, StageTimes(), source=_checked(path))
    except EventError as exc:
        return _error(path, exc)
    except Exception as exc:  # every input gets its line
        return _error(path, DecodeFailed(f"unexpected: {exc}"))


def _checked(path: Path) -> str:
    if not path.is_file():
        raise FetchFailed(f"no such file: {path}")
    return str(path)


def _infer(tagger: Tagger, chunk: list[Prepared[Path]]) -> dict[int, dict[str, Any]]:
    try:
        return {id(item): record for item, record in zip(chunk, tagger.infer(chunk), strict=True)}
    except EventError as exc:
        return {id(item): _error(item.message, exc) for item in chunk}


def _error(path: Path, exc: EventError) -> dict[str, Any]:
    return {
        "video_id": path.stem,
        "file": str(path),
        "code": exc.code,
        "message": str(exc),
        "attempts": getattr(exc, "attempts", 1),
    }
