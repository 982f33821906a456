"""How hard the fuzz properties try: a short, reproducible budget in CI, a long one by hand.

The profiles are applied per test (``@settings(budget(...))``), not loaded globally,
so the other hypothesis tests of the suite keep their own settings.

* ``fuzz-ci`` (default): derandomized (the same examples on every run, so a red CI is
  reproducible), no example database, the whole ``tests/fuzz`` folder in well under 30 s
  on the 2-core development machine even while it is busy.
* ``fuzz-long``: random, 50x the examples; ``MYNA_FUZZ_PROFILE=fuzz-long pytest tests/fuzz``.
  The million-input figures come from ``bench/fuzz.py``, not from here.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much, HealthCheck.large_base_example])
settings.register_profile("fuzz-ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile("fuzz-long", max_examples=5_000, **_COMMON)
PROFILE = os.environ.get("MYNA_FUZZ_PROFILE", "fuzz-ci")


def budget(scale: float = 1.0) -> settings:
    """The active profile with ``scale`` times its examples (cheap targets get more)."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=max(10, int(base.max_examples * scale)))
