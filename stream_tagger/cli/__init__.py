"""The ``stream-tagger`` command line."""

from stream_tagger.cli.main import main

__all__ = ["main"]
