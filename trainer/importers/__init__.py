"""``stream-tagger-train import``: turn labelled videos into a dataset folder (docs/datasets.md).

Each source (``folders``, ``csv``, ``kinetics``) yields candidate rows; :mod:`trainer.importers.run`
checks them (files present and decodable by the serving decoder, labels inside the taxonomy, clip ids
unique), links or copies the kept files and writes ``manifest.jsonl``, ``taxonomy.json`` (when given)
and ``import-report.json``. Every candidate ends kept or skipped with a reason; none is dropped
silently, and a bad clip never aborts the import.
"""
