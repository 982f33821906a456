"""Screens as data: the core says *which* screen with *what* parameters; the
renderer decides how it looks. Keeping this a plain value makes the flow testable
without pixels and lets ``mynasim gallery`` enumerate every state.

Every screen id the flow may emit is listed in ``SCREENS`` with the parameters it
takes. The renderer must draw each of them; tests check both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Screen:
    id: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.id not in SCREENS:
            raise ValueError(f"unknown screen {self.id!r}")


# id -> {param: description}. Keys in the descriptions use the positions of
# docs/architecture.md ("Keys").
SCREENS: dict[str, dict[str, str]] = {
    "idle": {"mode": "'auto' or 'visual' (目視確認 armed for the next card)"},
    "reading": {},
    "card_error": {"code": "reader error code, e.g. '001'", "reason": "error key, see ui.texts.ERRORS"},
    "cert_expiring": {},  # 次に進む = 12
    "cert_grace": {},  # 次に進む = 12; qualification only, no consents follow
    "cert_expired": {},  # visit ends; remove card, go to the counter
    "method_choice": {"choices": "list of 'face' | 'pin' | 'staff' mapped to keys 1,2,3; 終了する = 10",
                      "note": "optional: why 顔認証 is not offered, see ui.texts.FACE_NOTES"},
    "face_guide": {"hint": "quality hint key, see ui.texts.FACE_HINTS", "attempt": "1-based", "attempts": "max"},
    "face_checking": {},
    "face_failed": {"choices": "'pin' and/or 'staff' on keys 1,2; 終了する = 10", "attempts_left": "int", "code": "reader error code shown as エラーコード (optional)"},
    "pin_entry": {
        "layout": "tuple of 12 labels by position: digits as '0'..'9', '取消' at 10, 'クリア' at 12",
        "entered": "number of digits typed (0..4), shown as ● ○ ○ ○",
        "tries_left": "int or None (unknown)",
        "wrong": "True after a wrong PIN (「正しい暗証番号を入力してください」)",
        "proxy": "True when a proxy (代理人) enters the PIN",
    },
    "pin_last_try": {},  # warning: a wrong PIN now locks the card; 12 = continue, 10 = back
    "pin_backoff": {"seconds": "int, wait before the next try", "code": "reader error code shown as エラーコード (optional)"},
    "pin_locked": {"choices": "'face' and/or 'staff'; 終了する = 10", "code": "reader error code shown as エラーコード (optional)"},
    "pin_throttled": {"seconds": "int", "code": "reader error code shown as エラーコード (optional)"},
    "verifying": {},
    "consent_carryover": {"previous": "mapping consent item -> bool (previous answers here)"},  # 12 keep, 10 change
    "consent": {
        "item": "'surgery' | 'care_medicine' | 'checkup' | 'comprehensive' | 'limit'",
        "index": "1-based position", "total": "number of consent screens",
        "previous": "bool or None: the previous answer at this institution",
    },
    "registration_offer": {},  # 12 register now, 10 not now
    "registration_done": {},
    "done": {"name": "patient's name from the host", "qualification_only": "bool"},
    "remove_card": {"reminder": "bool: True once the card has been left too long"},
    "host_wait": {},  # waiting for the clinic host (qualification answer)
    "host_error": {"code": "reader error code"},
    "saving": {"code": "None, or the reader error code while results cannot be stored (disk full)"},
    "visual_check": {"stage": "'password' | 'confirm' | 'locked' (staff lockout) | 'not_set' (no staff password)", "entered": "digits typed for the staff password",
                     "layout": "the shuffled pad while the password is typed", "length": "password length",
                     "code": "reader error code on 'locked' / 'not_set' (optional)"},
    "cancelled": {"reason": "'user' | 'timeout' | 'card_removed'", "code": "reader error code shown as エラーコード (optional)"},
    "fault": {"code": "reader error code", "reason": "error key"},
    # key 11 on the first screen after the card is read: languages on 1..7 (ui.i18n.LANGUAGES),
    # 12 = text size (large text for this visit), 10 = back; docs/languages.md
    "language": {"current": "language code now in use (ui.i18n.LANG_CODES)"},
}

# Consent items the catalogue may offer, in display order.
CONSENT_ITEMS = ("surgery", "care_medicine", "checkup", "comprehensive", "limit")
