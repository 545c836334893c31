"""Datasets in the documented format (docs/datasets.md): rows, taxonomy, label sets, the on-disk cache
of frames and encoder features, and the torch loader that reads it."""
