"""Every screen state, in every language, in normal and in large text, stays inside the panel.

The states are the gallery's (``gallery_states``: every screen id with the parameters the
flow emits). For each page the renderer returns every text box it drew; each must lie
inside the 256x64 panel and inside the region it was given (a Latin descender may hang
1 px into the next row's gap, never off the panel), no two may overlap, nothing is drawn
below 12 px, and every word of the message is drawn on some page (paging is fine, text
that leaves the panel or is dropped is not). The fonts must have a glyph for every
character the catalogues use: a missing glyph is a box on the panel, not an exception.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw, ImageFont

from mynad.ui import fonts
from mynad.ui.i18n import LANG_CODES, LANGUAGES, TRANSLATED, translations
from mynad.ui.render import PAGE_KEY, layout_pages
from mynad.ui.texts import LANG_KEY, NEG_KEY, POS_KEY, content
from mynasim.gallery import gallery_states

SIZE = (256, 64)
STATES = gallery_states()
MODES = [(lang, large) for large in (False, True) for lang in LANG_CODES]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def check_page_boxes(label: str, page) -> None:
    W, H = SIZE
    for b in page.boxes:
        x0, y0, x1, y1 = b.box
        assert 0 <= x0 and 0 <= y0 and x1 <= W and y1 <= H, (label, "off the panel", b)
        rx0, ry0, rx1, ry1 = b.region
        assert rx0 <= x0 and ry0 <= y0 and x1 <= rx1 and y1 <= ry1 + 1, (label, "out of its region", b)
        assert b.kind == "shape" or b.size >= fonts.MIN_PX, (label, "below 12 px", b)
    for i, a in enumerate(page.boxes):
        for b in page.boxes[i + 1:]:
            overlap = (a.box[0] < b.box[2] and b.box[0] < a.box[2]
                       and a.box[1] < b.box[3] - 1 and b.box[1] < a.box[3] - 1)
            assert not overlap, (label, "overlap", a, b)


@pytest.mark.parametrize("lang,large", MODES, ids=[f"{lang}-{'large' if big else 'normal'}" for lang, big in MODES])
def test_every_state_fits_the_panel(lang, large):
    for label, screen in STATES:
        tag = f"{label} [{lang}{', large' if large else ''}]"
        pages = layout_pages(screen, SIZE, lang, large)
        assert pages, tag
        for page in pages:
            assert page.image.size == SIZE and page.image.mode == "L"
            check_page_boxes(tag, page)
        c = content(screen, lang)
        message = [b.text for p in pages for b in p.boxes if b.kind == "text" and b.role == "message"]
        for para in c.lines + c.note + tuple(x for x in (c.tries, c.tag) if x):
            # its lines, in order, across the pages (other paragraphs may sit between pages)
            mine = _squash("".join(t for t in message if _squash(t) in _squash(para)))
            assert _squash(para) in mine, (tag, "not drawn", para, message)
        drawn_boxes = {b.text for p in pages for b in p.boxes if b.role in ("key", "hint", "pad")}
        if c.dots is not None or c.pad is not None:  # PIN pads: the pad is the key hint
            for p in pages:
                assert set(c.pad or ()) <= {b.text for b in p.boxes}, (tag, "pad cell missing")
            continue
        labels = [t for _, t in c.choices] + [x for x in (c.neg, c.mid, c.pos) if x]
        for t in labels:
            assert t in drawn_boxes, (tag, "key label not drawn", t)
        for k, t in [(k, t) for k, t in c.choices] + [(NEG_KEY, c.neg), (LANG_KEY, c.mid), (POS_KEY, c.pos)]:
            if t:
                assert str(k) in drawn_boxes, (tag, "key badge missing", k)


@pytest.mark.parametrize("lang", LANG_CODES)
def test_large_text_pages_show_the_page_key_and_fewer_words(lang):
    """Large text: bigger glyphs, fewer words per page; several pages carry the page key 9."""
    more = 0
    for label, screen in STATES:
        c = content(screen, lang)
        if c.dots is not None or c.pad is not None:
            continue  # PIN pads: every key is a digit, the pages turn by themselves
        normal = layout_pages(screen, SIZE, lang, False)
        large = layout_pages(screen, SIZE, lang, True)
        assert len(large) >= len(normal), label
        more += len(large) > len(normal)
        body = [b for p in large for b in p.boxes if b.role == "message"]
        assert all(b.size >= 18 for b in body), (label, [b.size for b in body])
        if len(large) > 1:
            for i, page in enumerate(large, 1):
                texts = [b.text for b in page.boxes]
                assert f"{i}/{len(large)}" in texts and str(PAGE_KEY) in texts, (label, texts)
    assert more > len(STATES) // 2


def _missing_glyphs(font: ImageFont.FreeTypeFont, text: str) -> set[str]:
    """Characters the face draws as its .notdef box (FreeType's glyph 0)."""
    def ink(ch: str) -> bytes:
        img = Image.new("L", (3 * font.size, 3 * font.size))
        ImageDraw.Draw(img).text((font.size // 2, font.size // 2), ch, font=font, fill=255)
        return img.tobytes()

    notdef = ink("\U0010fffd")
    return {ch for ch in set(text) - set(" \u3000") if ink(ch) == notdef}


@pytest.mark.parametrize("lang", LANG_CODES)
def test_fonts_cover_every_character_of_the_language(lang):
    t = translations(lang)
    texts = [lang_.name for lang_ in LANGUAGES if lang_.code == lang]
    if lang in TRANSLATED:
        texts += list(t._catalog.values())  # type: ignore[attr-defined]
    else:
        for _, screen in STATES:
            texts.append("".join(content(screen, lang).lines))
    for bold in (False, True):
        missing = _missing_glyphs(fonts.font(fonts.BODY_PX, bold, lang), "".join(texts))
        assert not missing, (lang, bold, sorted(missing))


def test_each_language_has_its_face():
    """Han characters differ by region: Chinese in the SC face, Korean in the KR face, the
    rest in the JP face (a Japanese name on an English screen keeps its Japanese forms)."""
    names = {lang: fonts.font(fonts.BODY_PX, False, lang).getname()[0] for lang in LANG_CODES}
    if "Noto Sans CJK" not in names["ja"]:
        pytest.fail(f"Noto Sans CJK (fonts-noto-cjk) is not installed: {names}")
    assert names["zh_Hans"].endswith("SC") and names["ko"].endswith("KR"), names
    assert all(names[c].endswith("JP") for c in ("ja", "en", "vi", "pt", "tl")), names
