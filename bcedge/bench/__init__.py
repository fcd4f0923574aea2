"""Benchmark support: machine description, timing with warm-up and percentiles (no torch)."""
