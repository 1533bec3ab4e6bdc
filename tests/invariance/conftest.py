"""Fixtures for invariance tests: calibrated Inception weights (shared helper)."""

from tests.weights import inception_weights  # noqa: F401  (fixture re-export)
