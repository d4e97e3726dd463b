"""Benchmarks: each prints its figures against a baseline measured in the same run.

``python -m bench.run_all`` runs them all (see docs/performance.md). Benchmarks never
assert; they print.
"""
