"""Benchmarks of meetreg against the built-in Graph simulator (issue #3); see README.md."""
