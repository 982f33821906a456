"""Draw the printed front of a virtual My Number card, flat and square-on (the card itself).

``draw_card(profile)`` gives an RGBA image of the whole card at ``PX_PER_MM`` with the
rounded ID-1 corners transparent. The camera model (``scene``) then places it in the tray.
The texts are the ones a reader has to cope with: 和暦 birth dates for Japanese nationals
(「昭和56年 5月12日生」, 元年 for year 1), 西暦 for foreign residents and for the
next-generation card, and the validity date 「2031年 5月12日まで有効」, which for a Japanese
national falls on the holder's birthday (the card runs to the 10th birthday after issue).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from mynasim.card.profiles import HEISEI_START, REIWA_START, SHOWA_START, Profile
from mynasim.cardface.layout import CARD_H_MM, CARD_W_MM, CORNER_R_MM, CURRENT, NEXT_GEN, FaceLayout

PX_PER_MM = 12.0  # the flat card is drawn at this resolution, then warped by the camera model
INK = (28, 28, 30)
LABEL_INK = (90, 90, 96)
PAPER = (247, 245, 240)
CARD_KINDS = ("japanese", "foreign", "next_gen")

_SEX = {"1": "男", "2": "女"}


def assets_dir() -> Path:
    """``$MYNA_ASSETS`` or the source tree's assets/ (photos live in assets/faces), as the rig finds them."""
    env = os.environ.get("MYNA_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "assets"


def _mm(v: float) -> int:
    return int(round(v * PX_PER_MM))


@functools.lru_cache(maxsize=32)
def _font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    from mynad.ui.fonts import font

    return font(size_px, bold=bold)


def wareki(d: dt.date) -> tuple[str, int]:
    """(era name, era year) of a date; dates before 昭和 are not printed on live cards."""
    if d >= REIWA_START:
        return "令和", d.year - 2018
    if d >= HEISEI_START:
        return "平成", d.year - 1988
    if d >= SHOWA_START:
        return "昭和", d.year - 1925
    if d >= dt.date(1912, 7, 30):
        return "大正", d.year - 1911
    return "明治", d.year - 1867


def birth_text(birth: dt.date, kind: str) -> str:
    """「昭和56年 5月12日生」 (Japanese national) or 「1990年 1月 1日生」 (foreign resident, next-gen)."""
    md = f"{birth.month:2d}月{birth.day:2d}日生"
    if kind == "japanese":
        era, y = wareki(birth)
        year = "元" if y == 1 else f"{y}"
        return f"{era}{year}年{md}"
    return f"{birth.year}年{md}"


def validity_date(profile: Profile, kind: str) -> dt.date:
    """The printed 「…まで有効」 date.

    Japanese nationals (and, as modelled, next-gen cards): the birthday in the expiry year
    (29 Feb falls back to 28 Feb in a common year). Foreign residents: the end of the period
    of stay, which is any day; derived from the profile key so it stays the same.
    """
    y = profile.card_expiry_year
    if kind == "foreign":
        h = int.from_bytes(hashlib.sha256(f"stay:{profile.key}".encode()).digest()[:4], "big")
        return dt.date(y, 1, 1) + dt.timedelta(days=h % 365)
    b = profile.birth_date
    try:
        return dt.date(y, b.month, b.day)
    except ValueError:
        return dt.date(y, 2, 28)


def validity_text(d: dt.date) -> str:
    return f"{d.year}年{d.month:2d}月{d.day:2d}日まで有効"


def card_serial(profile: Profile) -> str:
    """The 16-digit number printed under the photo (derived from the key; not part of 照合番号B)."""
    h = int.from_bytes(hashlib.sha256(f"serial:{profile.key}".encode()).digest()[:8], "big")
    return f"{h % 10**16:016d}"


def card_kind(profile: Profile) -> str:
    kind = getattr(profile, "card_kind", "japanese")
    if kind not in CARD_KINDS:
        raise ValueError(f"unknown card kind {kind!r} (one of {', '.join(CARD_KINDS)})")
    return kind


def _background(w: int, h: int, kind: str) -> Image.Image:
    """Pale security print: fine guilloche-like waves and a soft tint band (no real artwork)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    waves = 0.5 + 0.5 * np.sin(xx / 9.0 + 6.0 * np.sin(yy / 37.0)) * np.sin(yy / 11.0 + 4.0 * np.sin(xx / 53.0))
    base = np.array(PAPER, np.float32)
    tint = np.array((236, 226, 232) if kind != "next_gen" else (226, 234, 240), np.float32)
    band = np.exp(-(((xx / w) - 0.72) ** 2) / 0.05)[..., None]
    img = base + (tint - base) * (0.35 * band + 0.25 * waves[..., None] * 0.5)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _photo(profile: Profile, box_px: tuple[int, int, int, int], photos_dir: Path | None) -> Image.Image:
    w, h = box_px[2] - box_px[0], box_px[3] - box_px[1]
    path = (photos_dir or assets_dir() / "faces") / profile.photo if profile.photo else None
    if path is not None and path.is_file():
        with Image.open(path) as im:
            upright = ImageOps.exif_transpose(im).convert("RGB")
            return ImageOps.fit(upright, (w, h), method=Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    # no photo file: a plain grey silhouette keeps the layout (the OCR never looks there)
    img = Image.new("RGB", (w, h), (200, 205, 212))
    d = ImageDraw.Draw(img)
    d.ellipse((w * 0.28, h * 0.15, w * 0.72, h * 0.6), fill=(120, 120, 128))
    d.rectangle((w * 0.15, h * 0.62, w * 0.85, h), fill=(120, 120, 128))
    return img


def _wrap(text: str, f: ImageFont.FreeTypeFont, width_px: int) -> list[str]:
    lines, cur = [], ""
    for ch in text:
        if f.getlength(cur + ch) > width_px and cur:
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    return lines + ([cur] if cur else [])


def draw_card(profile: Profile, photos_dir: Path | None = None) -> Image.Image:
    """The card front, RGBA, ``PX_PER_MM`` pixels per millimetre, corners transparent."""
    kind = card_kind(profile)
    lay: FaceLayout = NEXT_GEN if kind == "next_gen" else CURRENT
    W, H = _mm(CARD_W_MM), _mm(CARD_H_MM)
    img = _background(W, H, kind)
    d = ImageDraw.Draw(img)
    small = _font(_mm(1.7))
    # header
    d.text((_mm(3.5), _mm(1.6)), "個人番号カード" if kind != "next_gen" else "マイナンバーカード", font=_font(_mm(2.2), True),
           fill=(70, 60, 90))
    # 氏名
    d.text((_mm(lay.label_x), _mm(lay.name_y + 1.4)), "氏名", font=small, fill=LABEL_INK)
    d.text((_mm(lay.text_x), _mm(lay.name_y)), profile.name, font=_font(_mm(lay.name_size)), fill=INK)
    # 住所 (wraps onto a second line before the photo)
    d.text((_mm(lay.label_x), _mm(lay.address_y + 0.6)), "住所", font=small, fill=LABEL_INK)
    fa = _font(_mm(lay.address_size))
    for i, line in enumerate(_wrap(profile.address, fa, _mm(lay.photo_box[0] - 2.0 - lay.text_x))[:2]):
        d.text((_mm(lay.text_x), _mm(lay.address_y + i * (lay.address_size + 1.0))), line, font=fa, fill=INK)
    # 生年月日 + 性別
    fb = _font(_mm(lay.birth_size))
    d.text((_mm(lay.text_x), _mm(lay.birth_y)), birth_text(profile.birth_date, kind), font=fb, fill=INK)
    if lay.sex_x is not None and profile.sex in _SEX:
        d.text((_mm(lay.sex_x), _mm(lay.birth_y + 0.6)), "性別", font=small, fill=LABEL_INK)
        d.text((_mm(lay.sex_x + 4.5), _mm(lay.birth_y)), _SEX[profile.sex], font=fb, fill=INK)
    # 「…まで有効」 in its frame, then the 電子証明書の有効期限 box (filled in by hand at the office)
    fe = _font(_mm(lay.expiry_size))
    et = validity_text(validity_date(profile, kind))
    ex0, ey0 = _mm(lay.text_x - 1.0), _mm(lay.expiry_y - 0.8)
    ex1, ey1 = _mm(lay.text_x) + int(fe.getlength(et)) + _mm(1.0), _mm(lay.expiry_y + lay.expiry_size + 1.2)
    d.rounded_rectangle((ex0, ey0, ex1, ey1), radius=_mm(0.8), outline=(120, 110, 140), width=2)
    d.text((_mm(lay.text_x), _mm(lay.expiry_y)), et, font=fe, fill=INK)
    cy = lay.expiry_y + lay.expiry_size + 2.5
    d.rectangle((_mm(3.0), _mm(cy), _mm(43.0), _mm(cy + 4.0)), outline=(150, 140, 160), width=1)
    d.text((_mm(3.6), _mm(cy + 0.9)), "電子証明書の有効期限", font=small, fill=LABEL_INK)
    d.text((_mm(25.0), _mm(cy + 0.9)), "年　　月　　日", font=small, fill=LABEL_INK)
    # サインパネル領域 and 臓器提供意思
    d.rectangle((_mm(3.0), _mm(cy + 5.0), _mm(57.0), _mm(cy + 10.5)), fill=(240, 238, 236), outline=(215, 212, 210))
    d.text((_mm(3.5), _mm(CARD_H_MM - 4.5)), "臓器提供意思", font=small, fill=LABEL_INK)
    d.rectangle((_mm(15.5), _mm(CARD_H_MM - 4.6), _mm(17.3), _mm(CARD_H_MM - 2.8)), outline=LABEL_INK, width=1)
    # photo, serial and セキュリティコード under it
    x0, y0, x1, y1 = lay.photo_box
    pb = (_mm(x0), _mm(y0), _mm(x1), _mm(y1))
    img.paste(_photo(profile, pb, photos_dir), (pb[0], pb[1]))
    cx = (pb[0] + pb[2]) // 2
    fs = _font(_mm(lay.serial_size))
    d.text((cx, _mm(lay.serial_y)), card_serial(profile), font=fs, fill=INK, anchor="mt")
    d.text((cx, _mm(lay.code_y)), profile.security_code, font=_font(_mm(lay.code_size)), fill=INK, anchor="mt")
    # ID-1 rounded corners
    alpha = Image.new("L", (W, H), 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, W - 1, H - 1), radius=_mm(CORNER_R_MM), fill=255)
    img.putalpha(alpha)
    return img
