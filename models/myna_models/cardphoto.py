"""The chip's photo form: greyscale JPEG 2000 at low resolution.

The card-surface application (券面AP, DF27) holds the face photo as a small
greyscale JPEG 2000. Accuracy must be measured on that form, and the virtual card
must store exactly that form, so both use this one function.
"""

from __future__ import annotations

import io

from PIL import Image

# Approximate size of the chip photo (portrait, 3:4); the real one is a
# low-resolution scan of the printed 35x45 mm photo.
CARD_PHOTO_SIZE = (180, 240)
# Target compressed size in bytes (the card's photo is a few kilobytes).
CARD_PHOTO_RATE = 20


def encode_card_photo(image: Image.Image, size: tuple[int, int] = CARD_PHOTO_SIZE) -> bytes:
    """Turn any photo into the chip's form: greyscale, ``size``, JPEG 2000 (J2K codestream in JP2)."""
    grey = image.convert("L")
    grey = _fit(grey, size)
    out = io.BytesIO()
    grey.save(out, format="JPEG2000", irreversible=True, quality_mode="rates",
              quality_layers=[CARD_PHOTO_RATE], no_jp2=False)
    return out.getvalue()


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop to the target aspect ratio, then resize (no distortion)."""
    tw, th = size
    w, h = img.size
    target = tw / th
    if w / h > target:  # too wide
        nw = int(h * target)
        x0 = (w - nw) // 2
        img = img.crop((x0, 0, x0 + nw, h))
    else:
        nh = int(w / target)
        y0 = (h - nh) // 2
        img = img.crop((0, y0, w, y0 + nh))
    return img.resize(size, Image.Resampling.LANCZOS)
