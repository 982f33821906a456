"""Policy numbers of the reception flow, with safe defaults.

They come from the ``[flow]``, ``[pin]`` and ``[consents]`` sections of the daemon
config (see docs/configuration.md); the core only ever sees this frozen value.
"""

from __future__ import annotations

from dataclasses import dataclass

from mynad.ui.screens import CONSENT_ITEMS


@dataclass(frozen=True)
class FlowConfig:
    # Seconds a screen waits for the patient before the visit is cancelled.
    screen_timeout_s: float = 60.0
    # Seconds to wait for the clinic host (challenge, qualification answer).
    host_timeout_s: float = 20.0
    # Face attempts before the patient is offered the PIN or staff help.
    face_attempts: int = 3
    # After completion: remind the patient to take the card after this long.
    card_left_s: float = 15.0
    # Repeat the reminder (screen + buzzer) every this many seconds.
    card_left_repeat_s: float = 20.0
    # Seconds the completion message stays before the take-your-card screen.
    done_s: float = 4.0
    # Storing a result normally takes milliseconds; if it takes longer than this, say so.
    saving_notice_s: float = 1.0
    # Seconds an error or cancel message stays before the take-your-card screen.
    notice_s: float = 5.0
    # PIN policy
    pin_backoff_s: float = 3.0  # wait after a wrong PIN
    throttle_max_wrong: int = 5  # wrong PINs across all cards ...
    throttle_window_s: float = 600.0  # ... within this window ...
    throttle_block_s: float = 300.0  # ... block PIN entry on the device for this long
    warn_last_try: bool = True
    offer_proxy: bool = True
    # Staff visual check (目視確認)
    staff_password_length: int = 6
    visual_mode_timeout_s: float = 300.0  # armed from the host but no card came
    # Consents, in display order; "limit" (限度額) is off by default since 2024-10.
    consent_items: tuple[str, ...] = ("surgery", "care_medicine", "checkup", "comprehensive")
    checkup_min_age: int = 40
    carry_over_consents: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.consent_items) - set(CONSENT_ITEMS)
        if unknown:
            raise ValueError(f"unknown consent items: {sorted(unknown)}; known: {list(CONSENT_ITEMS)}")
        if self.face_attempts < 1:
            raise ValueError("face_attempts must be at least 1")
        if not 4 <= self.staff_password_length <= 12:
            raise ValueError("staff_password_length must be 4..12")
        for name in ("screen_timeout_s", "host_timeout_s", "pin_backoff_s", "throttle_window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
