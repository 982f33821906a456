"""On-device reader of the printed My Number card face (照合番号B for the chip photo).

``CardFaceReader(threads).read(bgr) -> CardFaceRead``; see ``reader`` for the steps and
docs/card-face.md for the measured accuracy and the refusal threshold.
"""

from myna_models.cardface.reader import THRESHOLD, CardFaceRead, CardFaceReader

__all__ = ["THRESHOLD", "CardFaceRead", "CardFaceReader"]
