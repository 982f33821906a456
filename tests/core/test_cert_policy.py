"""The certificate-expiry rule (reception-flow.md §2), with the calendar's edge cases."""

from __future__ import annotations

import datetime as dt

import pytest

from mynad.core.cert_policy import CertState, add_months, cert_state, grace_end

D = dt.date


@pytest.mark.parametrize("not_after, end", [
    (D(2026, 1, 15), D(2026, 4, 30)),    # end of January + 3 months
    (D(2026, 1, 31), D(2026, 4, 30)),
    (D(2025, 11, 30), D(2026, 2, 28)),   # across the year, into a short February
    (D(2027, 11, 1), D(2028, 2, 29)),    # leap year
    (D(2026, 12, 31), D(2027, 3, 31)),
    (D(2026, 10, 31), D(2027, 1, 31)),
])
def test_grace_ends_three_months_after_the_end_of_the_month_of_expiry(not_after, end):
    assert grace_end(not_after) == end
    assert cert_state(not_after, end) is CertState.GRACE
    assert cert_state(not_after, end + dt.timedelta(days=1)) is CertState.EXPIRED


def test_expiry_day_itself_is_still_expiring_and_the_next_day_is_grace():
    na = D(2026, 3, 31)
    assert cert_state(na, na) is CertState.EXPIRING
    assert cert_state(na, na + dt.timedelta(days=1)) is CertState.GRACE


@pytest.mark.parametrize("not_after, first_expiring", [
    (D(2026, 6, 15), D(2026, 3, 15)),
    (D(2026, 5, 31), D(2026, 2, 28)),    # no Feb 31: clamps to the month's last day
    (D(2028, 5, 31), D(2028, 2, 29)),
    (D(2026, 3, 1), D(2025, 12, 1)),     # across the year backwards
])
def test_expiring_starts_three_months_before(not_after, first_expiring):
    assert cert_state(not_after, first_expiring) is CertState.EXPIRING
    assert cert_state(not_after, first_expiring - dt.timedelta(days=1)) is CertState.VALID


def test_add_months_clamps():
    assert add_months(D(2026, 1, 31), 1) == D(2026, 2, 28)
    assert add_months(D(2026, 3, 31), -1) == D(2026, 2, 28)
    assert add_months(D(2026, 12, 15), 3) == D(2027, 3, 15)
