"""Confirmed labels grow the early-action memory while the workers serve (``stream-tagger memory``).

    videos.labels.confirmed (1 partition) ──► parse + label check ──► dedupe (video_id, label)
       ──► the worker's pipeline: URI policy → decode (the engine's sampling) → encoder ``features``
       ──► add to the class's bank ──► every N confirmations or T seconds: accuracy guard
       ──► publish early_action/N+1 (atomic, only if N is still the newest) ──► commit the offsets
     bad confirmation, refused batch ──► videos.labels.confirmed.dlq (code) ──► commit

Offsets are committed only once the version holding the example is published (or its DLQ record is
acknowledged), so the Kafka log is the staging area: a writer killed before a publish re-reads and
re-adds exactly what the published versions lack. Modules: ``confirmation`` (the event),
``features`` (the encoder and the evaluation set), ``guard`` (accuracy before publishing),
``session`` (the bank on top of the newest version), ``writer`` (the Kafka side).
"""
