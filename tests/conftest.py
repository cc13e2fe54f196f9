"""Test-wide settings.

Hypothesis profiles: a busy CI machine (or a developer's loaded laptop) can make one example
take longer than Hypothesis's default 200 ms deadline, which reports a correct function as
failing, so no profile has a deadline. `HYPOTHESIS_PROFILE=quick` runs fewer examples, for the
quick loop in the README.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("quick", parent=settings.get_profile("ci"), max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
