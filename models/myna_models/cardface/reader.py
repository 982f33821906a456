"""``CardFaceReader``: from one tray-camera frame to the three fields of 照合番号B, or a refusal.

Steps: find the card in the tray and rectify it (``geometry``), find the date lines and the
code line in their bands (``lines``), recognise just those crops in one batch
(``recognizer``), parse and cross-check them (``fields``). The confidence of a field is the
lowest probability of any character that made it; the read's confidence is the lowest of the
three. Below ``THRESHOLD`` the read is refused: the card allows only a few wrong 照合番号B
attempts, so the reader must rather ask for the card to be laid again than guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from myna_models.cardface import fields as F
from myna_models.cardface.geometry import NoCard, find_card, rectify
from myna_models.cardface.lines import CODE_BAND, DATE_BAND, PX_PER_MM, find_lines
from myna_models.cardface.recognizer import LineRecognizer, LineText

# Chosen on held-out renders (bench/cardface_bench.py --calibrate; docs/card-face.md).
THRESHOLD = 0.80


@dataclass(repr=False)
class CardFaceRead:
    """The result of one read. ``repr()`` never shows the values (they unlock the card's data)."""

    ok: bool
    confidence: float
    birth_date: dt.date | None = None
    expiry_year: int | None = None
    security_code: str | None = None
    reason: str | None = None
    field_confidence: dict[str, float] = field(default_factory=dict)

    def code_b(self) -> str:
        """照合番号B (14 digits). Only for an ok read: a refused read has no code to give."""
        if not self.ok or self.birth_date is None or self.expiry_year is None or self.security_code is None:
            raise ValueError("no 照合番号B: the card face was not read")
        return F.code_b(self.birth_date, self.expiry_year, self.security_code)

    def __repr__(self) -> str:
        return (f"CardFaceRead(ok={self.ok}, confidence={self.confidence:.3f}, "
                f"fields={'<redacted>' if self.birth_date else 'none'}, reason={self.reason!r})")

    __str__ = __repr__


def refused(reason: str, confidence: float = 0.0) -> CardFaceRead:
    return CardFaceRead(ok=False, confidence=confidence, reason=reason)


def _field_conf(line: LineText, span: tuple[int, int]) -> float:
    """Lowest probability among the original characters behind a match in the normalised text."""
    _, where = F.normalise(line.text)
    idx = sorted(set(where[span[0]:span[1]]))
    return min((line.probs[i] for i in idx), default=0.0)


class CardFaceReader:
    """Reads the printed card face; one onnxruntime session, reused for every frame."""

    def __init__(self, threads: int = 1, threshold: float = THRESHOLD) -> None:
        self.recognizer = LineRecognizer(threads=threads)
        self.threshold = threshold

    def read(self, bgr: np.ndarray, today: dt.date | None = None) -> CardFaceRead:
        today = today or dt.date.today()
        if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.ndim not in (2, 3):
            return refused("the camera frame is not an 8-bit image")
        try:
            quad = find_card(bgr)
        except NoCard as e:
            return refused(str(e))
        frame = bgr if bgr.ndim == 3 else np.repeat(bgr[..., None], 3, axis=2)
        dates = find_lines(rectify(frame, quad, PX_PER_MM, DATE_BAND))
        codes = find_lines(rectify(frame, quad, PX_PER_MM, CODE_BAND))
        if len(dates) < 2 or not codes:
            return refused("the card's date and code lines cannot be found (glare, blur or the wrong side up)")
        # the code is the last field-size line under the photo (the serial above it is smaller)
        # the two date lines have about the same width and share one batch; the short code line
        # runs alone rather than padded to their width
        texts = self.recognizer.read([dates[0].crop, dates[1].crop]) + self.recognizer.read([codes[-1].crop])
        return self.interpret(texts[0], texts[1], texts[2], today)

    def interpret(self, birth_line: LineText, validity_line: LineText, code_line: LineText,
                  today: dt.date) -> CardFaceRead:
        """Parse, cross-check and score three recognised lines (pure; the tests call it directly)."""
        try:
            birth = F.parse_birth(birth_line.text, today)
            validity = F.parse_validity(validity_line.text, today)
            code = F.parse_code(code_line.text)
            F.check_consistent(birth, validity)
        except F.FieldError as e:
            return refused(f"{e}; lay the card in the tray again")
        conf = {
            "birth_date": _field_conf(birth_line, birth.span),
            "expiry_year": _field_conf(validity_line, validity.span),
            "security_code": code_line.min_prob(),
        }
        overall = float(min(conf.values()))
        if overall < self.threshold:
            r = refused("the card face could not be read with confidence; lay the card in the tray again", overall)
            r.field_confidence = conf
            return r
        return CardFaceRead(ok=True, confidence=overall, birth_date=birth.date, expiry_year=validity.date.year,
                            security_code=code, field_confidence=conf)
