"""The one place the certificate-expiry rule lives (docs/reception-flow.md §4; sources: docs/sources.md §S2).

- valid:    more than 3 months before expiry
- expiring: from 3 months before expiry until the expiry date (alert, then normal flow)
- grace:    after expiry, until 3 months after the END OF THE MONTH of expiry
            (有効期限満了日の属する月の末日から3カ月間): qualification only
- expired:  later: refuse and send the patient to the counter
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum


class CertState(str, enum.Enum):
    VALID = "valid"
    EXPIRING = "expiring"
    GRACE = "grace"
    EXPIRED = "expired"


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to the month's last day (Nov 30 + 3 → Feb 28/29)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_month(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def grace_end(not_after: dt.date) -> dt.date:
    """Last day the card still works for qualification only."""
    return end_of_month(add_months(end_of_month(not_after).replace(day=1), 3))


def cert_state(not_after: dt.date, today: dt.date) -> CertState:
    """Classify the user-authentication certificate for ``today`` (both local dates).

    The certificate is valid through its notAfter day; "3 months before" is the
    same calendar day three months earlier.
    """
    if today > not_after:
        return CertState.GRACE if today <= grace_end(not_after) else CertState.EXPIRED
    if today >= add_months(not_after, -3):
        return CertState.EXPIRING
    return CertState.VALID
