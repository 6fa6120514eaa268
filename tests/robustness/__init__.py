"""Robustness tests: hostile and broken input, faults mid-run, long runs (see README_TABLE.md)."""
