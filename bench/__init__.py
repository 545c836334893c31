"""Benchmarks of stream-tagger: decode bound, naive baseline, the real worker, inference, latency.

Run with ``python -m bench`` (see ``python -m bench --help`` and docs/benchmarks.md). Everything is
measured in one process tree on one machine against one cached video set, so the ratios compare
like with like. Speed is measured here only, never in the test suite.
"""
