"""Robustness tests: hostile and broken input, faults mid-run, long runs (the README's robustness section lists them)."""
