"""stream-tagger: a streaming video tagging worker (Kafka → early-frame decode → engines → tags)."""

__version__ = "0.1.0"
