"""Offline training of stream-tagger's engines (needs the `train` extra: torch, onnx)."""
