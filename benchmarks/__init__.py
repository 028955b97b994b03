"""Reproducible throughput and memory benchmarks; `python -m benchmarks.dispatch --help`."""
