"""Benchmarks of meetreg against the built-in Graph simulator (issue #3).

What each script measures: bench/README.md; the latest figures: docs/performance.md.
"""
