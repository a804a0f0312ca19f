"""Benchmarks and load tests: run them as `python -m loadtests.<name>` from the repo root."""
