"""Hypothesis profiles for the surgery property test: "ci" (small, derandomized) by default, "slow" for make test-slow."""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=30, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("slow", max_examples=400, derandomize=False, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("ARCHKIT_HYPOTHESIS_PROFILE", "ci"))
