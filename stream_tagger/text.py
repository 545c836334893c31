"""Title tokenizer shared by the timeliness trainer and the worker: hashed n-grams, no vocabulary.

Nothing can be downloaded, so instead of a learned vocabulary every word and character n-gram is
hashed (blake2b, stable across processes, unlike Python's salted ``hash``) into ``buckets`` ids.
Text is NFKC-normalised and casefolded first; CJK runs have no spaces, so they contribute
character n-grams (and single characters) instead of words. Id 0 is padding.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Word-ish runs of letters/digits, or single CJK / kana / hangul characters.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")


@dataclass(frozen=True)
class HashedTokenizer:
    """Title → int64 ``[max_len]`` ids in ``[1, buckets)``; 0 pads."""

    buckets: int = 4096
    max_len: int = 32
    char_ngrams: tuple[int, ...] = (2, 3)
    scheme: str = "blake2b-8/nfkc-casefold/v1"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HashedTokenizer:
        values = dict(config)
        values["char_ngrams"] = tuple(values.get("char_ngrams", cls.char_ngrams))
        return cls(**values)

    def config(self) -> dict[str, Any]:
        values = asdict(self)
        values["char_ngrams"] = list(self.char_ngrams)
        return values

    def tokens(self, title: str) -> list[str]:
        """The strings that get hashed: words, CJK characters, then n-grams of each run."""
        text = unicodedata.normalize("NFKC", title).casefold()
        pieces = _TOKEN.findall(text)
        words = ["w:" + piece for piece in pieces]
        grams = [f"c{n}:" + run[i : i + n] for run in _runs(pieces) for n in self.char_ngrams
                 for i in range(len(run) - n + 1)]
        return words + grams

    def encode(self, title: str) -> np.ndarray:
        ids = [self._bucket(token) for token in self.tokens(title)][: self.max_len]
        out = np.zeros(self.max_len, dtype=np.int64)
        out[: len(ids)] = ids
        return out

    def encode_batch(self, titles: list[str]) -> np.ndarray:
        return np.stack([self.encode(title) for title in titles]) if titles else np.zeros((0, self.max_len), np.int64)

    def _bucket(self, token: str) -> int:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        return 1 + int.from_bytes(digest, "little") % (self.buckets - 1)


def _runs(pieces: list[str]) -> list[str]:
    """Character runs for n-grams: each non-CJK word, and each maximal sequence of CJK characters."""
    runs: list[str] = []
    cjk = ""
    for piece in pieces:
        if _IS_CJK.fullmatch(piece):
            cjk += piece
            continue
        if cjk:
            runs.append(cjk)
            cjk = ""
        runs.append(piece)
    if cjk:
        runs.append(cjk)
    return runs
