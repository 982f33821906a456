"""Where things are printed on the front of a My Number card (個人番号カード), in millimetres.

The card is ISO/IEC 7810 ID-1 (85.60 x 53.98 mm). Positions follow the public descriptions
of the front (氏名, 住所, 生年月日 and 性別, the validity date 「…まで有効」 with the
電子証明書の有効期限 box, the サインパネル area, the 臓器提供意思 box, the photo on the right
with the セキュリティコード under it) measured off published sample images by eye: the
reader must cope with a few millimetres of difference anyway, so exact vendor drawings are
not needed. The next-generation card (次期個人番号カード) moves the lines a little and
drops 性別 from the face; it is modelled by ``NEXT_GEN``.
"""

from __future__ import annotations

from dataclasses import dataclass

CARD_W_MM = 85.60
CARD_H_MM = 53.98
CORNER_R_MM = 3.18  # ID-1 corner radius


@dataclass(frozen=True)
class FaceLayout:
    """Baselines/boxes of one card generation (mm from the card's top-left corner)."""

    name_y: float
    name_size: float
    address_y: float
    address_size: float
    birth_y: float  # top of the 生年月日 text line
    birth_size: float
    sex_x: float | None  # None: 性別 is not printed on the face
    expiry_y: float  # top of the 「…まで有効」 line
    expiry_size: float
    text_x: float  # left edge of the field values
    label_x: float
    photo_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    serial_y: float  # top of the 16-digit serial line under the photo
    serial_size: float
    code_y: float  # top of the セキュリティコード line
    code_size: float


CURRENT = FaceLayout(
    name_y=6.0, name_size=4.0,
    address_y=13.0, address_size=2.9,
    birth_y=23.5, birth_size=3.0, sex_x=41.5,
    expiry_y=29.0, expiry_size=3.0,
    text_x=11.0, label_x=3.5,
    photo_box=(61.0, 8.0, 82.0, 35.0),
    serial_y=38.0, serial_size=1.9,
    code_y=41.0, code_size=3.2,
)

NEXT_GEN = FaceLayout(
    name_y=7.0, name_size=4.0,
    address_y=14.5, address_size=2.9,
    birth_y=25.0, birth_size=3.0, sex_x=None,
    expiry_y=30.5, expiry_size=3.0,
    text_x=11.0, label_x=3.5,
    photo_box=(60.5, 9.0, 82.0, 36.5),
    serial_y=39.0, serial_size=1.9,
    code_y=42.0, code_size=3.2,
)
