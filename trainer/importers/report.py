"""What an import did: the rows kept, the rows skipped with their reasons, the class counts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from trainer.datasets.format import LABEL_FIELDS

#: Why a candidate row was not kept (the ``reason`` of a skipped row).
REASONS = {
    "missing": "the file does not exist",
    "empty": "the file is empty (0 bytes)",
    "undecodable": "the serving decoder cannot read its early frames",
    "label_outside_taxonomy": "a label is not in taxonomy.json",
    "duplicate_clip_id": "another kept row has the same clip_id",
    "invalid_row": "the row lacks a required value or has a malformed one",
    "not_a_video": "the file's extension is not a video container's",
}


@dataclass
class Skipped:
    origin: str  # where the candidate came from: "line 7", a path
    clip_id: str | None
    reason: str
    detail: str

    def line(self) -> str:
        who = self.clip_id or "?"
        return f"skipped {who} ({self.origin}): {self.reason}: {self.detail}"


@dataclass
class ImportReport:
    source: str
    kept: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    min_clips: int = 5

    def skip(self, origin: str, clip_id: str | None, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        self.skipped.append(Skipped(origin, clip_id, reason, detail))

    def class_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter] = {}
        for row in self.kept:
            for family in LABEL_FIELDS:
                value = row.get(family)
                if value is None:
                    continue
                counts.setdefault(family, Counter()).update(value if isinstance(value, list) else [value])
        return {family: dict(sorted(c.items())) for family, c in counts.items()}

    def too_few(self) -> dict[str, dict[str, int]]:
        return {family: {label: n for label, n in c.items() if n < self.min_clips}
                for family, c in self.class_counts().items() if any(n < self.min_clips for n in c.values())}

    def to_dict(self) -> dict:
        return {"source": self.source, "kept": len(self.kept), "skipped": len(self.skipped),
                "skipped_by_reason": dict(Counter(s.reason for s in self.skipped)),
                "skipped_rows": [vars(s) for s in self.skipped], "class_counts": self.class_counts(),
                "min_clips": self.min_clips, "too_few_clips": self.too_few()}

    def lines(self) -> list[str]:
        out = [s.line() for s in self.skipped]
        out.append(f"kept {len(self.kept)} row(s), skipped {len(self.skipped)}"
                   + (f" ({', '.join(f'{r}: {n}' for r, n in Counter(s.reason for s in self.skipped).items())})"
                      if self.skipped else ""))
        for family, counts in self.class_counts().items():
            out.append(f"{family}: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
        for family, few in self.too_few().items():
            out.append(f"warning: {family} classes with fewer than {self.min_clips} clips: "
                       + ", ".join(f"{label} ({n})" for label, n in few.items()))
        return out

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
