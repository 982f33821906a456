"""The printed front of a virtual My Number card as the reader's tray camera sees it.

The simulator hands the daemon only this image (never the code it encodes): the reader has
to find the card, read 生年月日, the validity year and the セキュリティコード, and build
照合番号B itself, as a certified reader does with a real card.
"""

from mynasim.cardface.face import CARD_KINDS, birth_text, card_serial, draw_card, validity_date, validity_text
from mynasim.cardface.scene import FRAME_H, FRAME_W, Variation, card_corners, empty_tray, random_variation, render_card_face

__all__ = [
    "CARD_KINDS", "FRAME_H", "FRAME_W", "Variation", "birth_text", "card_corners", "card_serial", "draw_card",
    "empty_tray", "random_variation", "render_card_face", "validity_date", "validity_text",
]
