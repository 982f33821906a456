"""Draw a Screen for the 256x64 SSD1322 panel (4-bit greyscale), page by page, in the
patient's language, in normal or large text.

Layout grid (docs/display.md): four rows of 16 px. Body text is 14 px (kanji
14 px tall), never smaller than 12 px. The bottom row holds the key hints when
the screen has any: the negative key (10) at the left, the positive key (12) at
the right and the language key (11) between them, the way the keys sit on the 3x4
keypad below the panel. Choices (keys 1..4) go in a two-column grid above it (three
columns for the seven languages of the language menu). A message that does not fit is
split into pages (the shell cycles them); choices and key hints are on every page.

Large text (docs/languages.md): two rows of 32 px, body 22 px. The message and then
each key hint ("[1] 顔認証を行う", "[10] 終了する") follow one another, two rows per page,
so a page holds fewer words; when there are several pages a narrow column on the right
shows "2/3" and the page key 9, which the patient presses for the next page.

PIN pad screens put the 3x4 pad, as laid out this time, on the right and the
message, masked digits (● ○ ○ ○) and 「あと2回」 on the left. In large text the pad
stays as it is (every key is a digit there) and the left column shows one 22 px line
of the message per page above the masked digits.

Text is wrapped the way each script breaks: Japanese and Chinese between characters
with kinsoku (no line starts with 、。」ー or ，。！), the others between words.

Rendering is pure: the same Screen always gives the same pixels. ``layout_pages``
also returns every text box drawn, so tests can prove nothing leaves the panel
or overlaps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from mynad.ui import fonts
from mynad.ui.i18n import DEFAULT_LANG, normalise
from mynad.ui.screens import Screen
from mynad.ui.texts import LANG_KEY, NEG_KEY, POS_KEY, Content, content, dots_text

ROW = 16  # px per text row
LARGE_ROW = 32  # px per row in large text
MARGIN = 2  # px left and right of full-width text
FG = 255  # text
DIM = 96  # pad cell outlines, separators
BADGE_FG = 0  # key number inside its filled badge
PAGE_KEY = 9  # large text: the key that shows the next page (free on every screen but the PIN pads)
PAGER_W = 26  # large text: the right-hand column with "2/3" and the page key

# Kinsoku: characters a line must not start / end with (Japanese and Chinese).
_NO_START = set("、。，．,.・：:；;？?！!ー―-」』）)〕］]｝}〉》…ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々”’")
_NO_END = set("「『（(〔［[｛{〈《“‘")
_BREAK_AFTER = set("、。，！？；： 」）")
_PARTICLES = set("をにはがでとへの")
_CJK_WRAP = frozenset({"ja", "zh_Hans"})  # wrapped between characters; the rest between words


@dataclass
class TextBox:
    text: str
    box: tuple[int, int, int, int]  # ink bounding box on the page
    region: tuple[int, int, int, int]  # where it was allowed to go
    size: int  # font size in px (for shapes: their height)
    kind: str = "text"  # "text" | "shape" (the masked-digit circles)
    role: str = "message"  # "message" | "key" (a key's number badge) | "hint" (a key's label) | "pad" | "pager"


@dataclass
class Page:
    image: Image.Image
    boxes: list[TextBox] = field(default_factory=list)


class _Canvas:
    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.image = Image.new("L", size, 0)
        self.draw = ImageDraw.Draw(self.image)
        self.boxes: list[TextBox] = []

    def text(self, x: int, row_y: int, text: str, font: ImageFont.FreeTypeFont,
             region: tuple[int, int, int, int], fill: int = FG, row_h: int = ROW, role: str = "message") -> int:
        """Draw ``text`` left-aligned at ``x``, centred in the row at ``row_y``; returns its width.

        The row's baseline is the same for every line (:func:`_y_offset`); a line whose own ink
        would still leave its row (a Latin descender in the bottom row, a stacked Vietnamese
        accent) is moved up or down just enough to stay inside: at most 1 px below the row,
        never below the panel, never above the row."""
        y = row_y + _y_offset(font, row_h)
        if text:
            limit = min(row_y + row_h + 1, self.size[1])
            y, font = _place(text, font, y, row_y, limit)
            self.draw.text((x, y), text, font=font, fill=fill)
            left, top, right, bottom = _bbox(font, text)  # = draw.textbbox((x, y), ...), measured once
            self.boxes.append(TextBox(text, (x + left, y + top, x + right, y + bottom), region, int(font.size),
                                      role=role))
        return int(round(_length(font, text)))

    def page(self) -> Page:
        return Page(self.image, self.boxes)


def _ints(box: tuple[float, ...]) -> tuple[int, int, int, int]:
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


# Text measurement is most of a screen's drawing time (HarfBuzz shapes the string on every
# call: ~0.15 ms here, several times that on a Pi) and the same strings come back on every
# key press: the pad's labels, the prompt re-wrapped for each dot, the key hints. Fonts are
# cached for the daemon's life (fonts.font), so a font object is a stable key.
@functools.lru_cache(maxsize=16384)
def _length(font: ImageFont.FreeTypeFont, text: str) -> float:
    return font.getlength(text)


@functools.lru_cache(maxsize=16384)
def _bbox(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    return _ints(font.getbbox(text))


def _place(text: str, font: ImageFont.FreeTypeFont, y: int, row_y: int,
           limit: int) -> tuple[int, ImageFont.FreeTypeFont]:
    """(y, font) that keep ``text``'s ink between ``row_y`` and ``limit``: moved first; when the
    line is taller than the row (an accented capital over a descender: 「Última」, 「Ấ…g」),
    drawn one size smaller, down to the 12 px minimum."""
    while True:
        _, top, _, bottom = _bbox(font, text)
        if y + bottom > limit:
            y -= min(y + bottom - limit, max(0, y + top - row_y))
        if y + top < row_y:
            y = row_y - top
        if y + bottom <= limit or font.size <= fonts.MIN_PX:
            return y, font
        font = _smaller(font)
        y = row_y + _y_offset(font, limit - row_y - 1)


_variants: dict[tuple[str, int, int], ImageFont.FreeTypeFont] = {}


def _smaller(font: ImageFont.FreeTypeFont) -> ImageFont.FreeTypeFont:
    """The same face one pixel smaller (cached)."""
    key = (str(font.path), int(font.index), int(font.size) - 1)
    f = _variants.get(key)
    if f is None:
        f = _variants[key] = font.font_variant(size=int(font.size) - 1)
    return f


def _y_offset(font: ImageFont.FreeTypeFont, row_h: int) -> int:
    """Top offset for text in a row of ``row_h``: the full Japanese range (dakuten on
    top, 髙) is centred in the row when it fits with Latin descenders (a name in
    romaji); when it cannot (14 px Noto needs 17 px), the top stays inside the row
    and a descender may hang 1 px into the next row's gap."""
    key = (str(font.path), int(font.index), int(font.size), row_h)
    off = _offsets.get(key)
    if off is None:  # measured once per face, size and row height (getbbox is slow on a Pi)
        tall = min(int(font.getbbox(ch)[1]) for ch in "ごぎ髙漢「（")
        low = max(int(font.getbbox(ch)[3]) for ch in "漢gjpqy")
        free = row_h - (low - tall)
        off = _offsets[key] = max(0, free // 2) - tall
    return off


_offsets: dict[tuple[str, int, int, int], int] = {}


class _Style:
    """Sizes and fonts of one rendering: the language picks the face, large text the sizes."""

    def __init__(self, lang: str, large: bool) -> None:
        self.lang = normalise(lang)
        self.large = large
        self.row = LARGE_ROW if large else ROW
        self.body_px = fonts.LARGE_BODY_PX if large else fonts.body_px(self.lang)
        # sizes tried, largest first, when a label must squeeze
        self.sizes = (fonts.LARGE_BODY_PX, 20, 18, 16, fonts.BODY_PX, fonts.SMALL_PX) if large \
            else tuple(sorted({self.body_px, fonts.SMALL_PX}, reverse=True))

    def font(self, size: int | None = None, bold: bool = False) -> ImageFont.FreeTypeFont:
        return fonts.font(size or self.body_px, bold, self.lang)

    def badge_font(self) -> ImageFont.FreeTypeFont:
        return fonts.font(fonts.BODY_PX if self.large else fonts.SMALL_PX, True, self.lang)

    def fit(self, text: str, width: int, sizes: tuple[int, ...] | None = None) -> ImageFont.FreeTypeFont:
        """The largest of ``sizes`` in which ``text`` fits ``width`` (else the smallest)."""
        sizes = sizes or self.sizes
        for s in sizes:
            f = self.font(s)
            if _length(f, text) <= width:
                return f
        return self.font(sizes[-1])


def _fit(text: str, width: int, sizes: tuple[int, ...] = (fonts.BODY_PX, fonts.SMALL_PX),
         bold: bool = False, lang: str = DEFAULT_LANG) -> ImageFont.FreeTypeFont:
    """The largest of ``sizes`` in which ``text`` fits ``width`` (else the smallest)."""
    for s in sizes:
        f = fonts.font(s, bold, lang)
        if _length(f, text) <= width:
            return f
    return fonts.font(sizes[-1], bold, lang)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, lang: str = DEFAULT_LANG) -> list[str]:
    """Break ``text`` into lines no wider than ``width``: between characters with simple
    kinsoku for Japanese and Chinese, between words for the other languages."""
    if normalise(lang) not in _CJK_WRAP:
        return _wrap_words(text, font, width)
    japanese = normalise(lang) == "ja"
    lines: list[str] = []
    rest = text.strip()
    while rest:
        if _length(font, rest) <= width:
            lines.append(rest)
            break
        n = 1
        while n < len(rest) and _length(font, rest[:n + 1]) <= width:
            n += 1
        cut = _natural_break(rest, n, japanese)
        if cut == n and 0 < len(rest) - n <= 2:  # no orphan of one or two characters
            cut = max(1, n - 3)
        while cut > 1 and (rest[cut:cut + 1] in _NO_START and rest[cut:cut + 1] != "" or rest[cut - 1] in _NO_END):
            cut -= 1
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def _natural_break(rest: str, n: int, particles: bool = True) -> int:
    """Where to end a line that can hold ``n`` characters of ``rest``: after punctuation
    in its last two thirds, else (Japanese) after a particle among its last 9 characters, else at n."""
    for j in range(n, max(n // 3, 1) - 1, -1):
        if rest[j - 1] in _BREAK_AFTER and rest[j:j + 1] not in _NO_START:
            return j
    if particles:
        for j in range(n, max(n - 9, n // 2, 1) - 1, -1):
            if rest[j - 1] in _PARTICLES and rest[j:j + 1] not in _NO_START and rest[j:j + 1] not in _PARTICLES:
                return j
    return n


def _wrap_words(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap; a word wider than the line (a long name) is cut between characters."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _length(font, candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while _length(font, word) > width:
            n = 1
            while n < len(word) and _length(font, word[:n + 1]) <= width:
                n += 1
            lines.append(word[:n])
            word = word[n:]
        line = word
    if line:
        lines.append(line)
    return lines


def _badge(c: _Canvas, x: int, row_y: int, key: int, region: tuple[int, int, int, int], st: _Style) -> int:
    """A filled key badge with the key's position number; returns its width."""
    f = st.badge_font()
    label = str(key)
    tw = int(round(_length(f, label)))
    w = tw + 6
    _, top, _, bottom = _bbox(f, "0")
    if st.large:  # a 14 px number in a badge centred in the 32 px row
        h = (bottom - top) + 8
        y0 = row_y + (st.row - h) // 2
        c.draw.rounded_rectangle((x, y0, x + w - 1, y0 + h - 1), radius=3, fill=FG)
        y = y0 + 4 - top
    else:
        c.draw.rounded_rectangle((x, row_y + 1, x + w - 1, row_y + ROW - 2), radius=3, fill=FG)
        y = row_y + (ROW - (bottom - top)) // 2 - top - 1
    c.draw.text((x + 3, y), label, font=f, fill=BADGE_FG)
    left, btop, right, bbottom = _bbox(f, label)
    c.boxes.append(TextBox(label, (x + 3 + left, y + btop, x + 3 + right, y + bbottom), region, int(f.size),
                           role="key"))
    return w


def _hint_width(key: int, label: str, font: ImageFont.FreeTypeFont, st: _Style) -> int:
    f = st.badge_font()
    return int(round(_length(f, str(key)))) + 6 + 3 + int(round(_length(font, label)))


def _hint(c: _Canvas, x: int, row_y: int, key: int, label: str, font: ImageFont.FreeTypeFont,
          region: tuple[int, int, int, int], st: _Style) -> None:
    w = _badge(c, x, row_y, key, region, st)
    c.text(x + w + 3, row_y, label, font, region, row_h=st.row, role="hint")


def _footer(c: _Canvas, row_y: int, neg: str | None, mid: str | None, pos: str | None, st: _Style) -> None:
    """Key hints in the order of the keypad's bottom row: 10 left, 11 between, 12 right."""
    W = c.size[0]
    region = (0, row_y, W, row_y + ROW)
    items = [(k, t) for k, t in ((NEG_KEY, neg), (LANG_KEY, mid), (POS_KEY, pos)) if t]
    for size in st.sizes[-2:] if not st.large else (fonts.BODY_PX, fonts.SMALL_PX):
        f = st.font(size)
        total = sum(_hint_width(k, t, f, st) for k, t in items) + 8 * (len(items) - 1) + 2 * MARGIN
        if total <= W:
            break
    widths = {k: _hint_width(k, t, f, st) for k, t in items}
    if neg:
        _hint(c, MARGIN, row_y, NEG_KEY, neg, f, region, st)
    if pos:
        _hint(c, W - MARGIN - widths[POS_KEY], row_y, POS_KEY, pos, f, region, st)
    if mid:
        left = MARGIN + (widths[NEG_KEY] + 8 if neg else 0)
        right = W - MARGIN - (widths[POS_KEY] + 8 if pos else 0)
        x = max(left, min((W - widths[LANG_KEY]) // 2, right - widths[LANG_KEY]))
        _hint(c, x, row_y, LANG_KEY, mid, f, region, st)
    c.draw.line((0, row_y, W - 1, row_y), fill=DIM // 2)


def _choice_rows(choices: tuple[tuple[int, str], ...], width: int, st: _Style,
                 langs: tuple[str, ...] = ()) -> list[list[tuple[int, str, ImageFont.FreeTypeFont]]]:
    """Choices two per row when both fit half the width, else one per row; more than four
    choices (the language menu) go three per row, each language's name in its own face."""
    cols = 3 if len(choices) > 4 else 2
    cell = width // cols - MARGIN
    rows: list[list[tuple[int, str, ImageFont.FreeTypeFont]]] = []
    styles = {k: (_Style(lang, st.large) if lang else st) for (k, _), lang in
              zip(choices, tuple(langs) + ("",) * len(choices))}
    pending = list(choices)
    while pending:
        row: list[tuple[int, str, ImageFont.FreeTypeFont]] = []
        while pending and len(row) < cols:
            k, t = pending[0]
            f = styles[k].fit(t, cell - _hint_width(k, "", st.font(), st))
            if _hint_width(k, t, f, st) > cell and (row or len(pending) > 1):
                if row:
                    break
                # alone on its row, with the whole width
                f = styles[k].fit(t, width - 2 * MARGIN - _hint_width(k, "", st.font(), st))
                row.append((k, t, f))
                pending.pop(0)
                break
            row.append((k, t, f))
            pending.pop(0)
        rows.append(row)
    return rows


def _paginate(paras: list[list[str]], rows: int) -> list[list[str]]:
    """Fill pages of ``rows`` lines, keeping a paragraph on one page whenever it fits on one."""
    pages: list[list[str]] = [[]]
    for lines in paras:
        if pages[-1] and len(pages[-1]) + len(lines) > rows and len(lines) <= rows:
            pages.append([])
        for line in lines:
            if len(pages[-1]) >= rows:
                pages.append([])
            pages[-1].append(line)
    return pages


def _with_tag(c_: Content) -> Content:
    """Off the PIN pad a tag (「目視確認（職員）」) has no row of its own: it heads the message."""
    if not c_.tag:
        return c_
    return Content(**{**c_.__dict__, "lines": (c_.tag,) + tuple(c_.lines), "tag": None})


def _standard(c_: Content, size: tuple[int, int], st: _Style) -> list[Page]:
    c_ = _with_tag(c_)
    W, H = size
    nrows = H // ROW
    has_footer = bool(c_.neg or c_.pos or c_.mid)
    crow = _choice_rows(c_.choices, W, st, c_.choice_langs)
    free_rows = nrows - len(crow) - (1 if has_footer else 0)
    body_rows = max(1, free_rows) if c_.lines else max(0, free_rows)
    body_font = st.font()
    chunks = _paginate([wrap(para, body_font, W - 2 * MARGIN, st.lang) for para in c_.lines], max(1, body_rows))
    pages = []
    for chunk in chunks:
        c = _Canvas(size)
        top = (body_rows - len(chunk)) * ROW // 2 if len(chunks) == 1 else 0
        for i, line in enumerate(chunk):
            y = top + i * ROW
            c.text(MARGIN, y, line, body_font, (0, y, W, y + ROW))
        y = body_rows * ROW if c_.lines else max(0, free_rows) * ROW // 2
        for row in crow:
            cw = W // (3 if len(c_.choices) > 4 else 2) if len(row) > 1 else W
            for j, (k, t, f) in enumerate(row):
                x = MARGIN + j * cw
                region = (x, y, min(W, x + (cw if len(row) > 1 else W) - MARGIN), y + ROW)
                _hint(c, x, y, k, t, f, region, st)
            y += ROW
        if has_footer:
            _footer(c, H - ROW, c_.neg, c_.mid, c_.pos, st)
        pages.append(c.page())
    return pages


# ---------------------------------------------------------------- large text


@dataclass(frozen=True)
class _Item:
    """One row of a large-text page: a line of the message, or a key with its label."""

    text: str
    key: int | None = None
    lang: str = ""  # the language menu: the name's own language


def _large_items(c_: Content, width: int, st: _Style) -> list[list[_Item]]:
    """The message paragraphs (wrapped at ``width``), then one item per key: each list is a
    paragraph kept on one page when it fits."""
    f = st.font()
    paras = [[_Item(line) for line in wrap(p, f, width, st.lang)] for p in c_.lines]
    langs = dict(zip((k for k, _ in c_.choices), c_.choice_langs))
    keys = list(c_.choices) + [(k, t) for k, t in ((NEG_KEY, c_.neg), (LANG_KEY, c_.mid), (POS_KEY, c_.pos)) if t]
    paras += [[_Item(t, k, langs.get(k, ""))] for k, t in keys]
    return [p for p in paras if p]


def _large_pages(items: list[list[_Item]], rows: int) -> list[list[_Item]]:
    pages: list[list[_Item]] = [[]]
    for para in items:
        if pages[-1] and len(pages[-1]) + len(para) > rows and len(para) <= rows:
            pages.append([])
        for it in para:
            if len(pages[-1]) >= rows:
                pages.append([])
            pages[-1].append(it)
    return pages


def _large_standard(c_: Content, size: tuple[int, int], st: _Style) -> list[Page]:
    c_ = _with_tag(c_)
    W, H = size
    rows = H // LARGE_ROW
    width = W - 2 * MARGIN
    pages_items = _large_pages(_large_items(c_, width, st), rows)
    if len(pages_items) > 1:  # make room for the pager column and lay out again
        width = W - 2 * MARGIN - PAGER_W
        pages_items = _large_pages(_large_items(c_, width, st), rows)
    n = len(pages_items)
    out = []
    for i, chunk in enumerate(pages_items):
        c = _Canvas(size)
        top = (rows - len(chunk)) * LARGE_ROW // 2 if n == 1 else 0
        for r, it in enumerate(chunk):
            y = top + r * LARGE_ROW
            region = (0, y, MARGIN + width, y + LARGE_ROW)
            if it.key is None:
                c.text(MARGIN, y, it.text, st.font(), region, row_h=LARGE_ROW)
            else:
                own = _Style(it.lang, True) if it.lang else st
                f = own.fit(it.text, width - _hint_width(it.key, "", st.font(), st))
                _hint(c, MARGIN, y, it.key, it.text, f, region, st)
        if n > 1:
            _pager(c, W - PAGER_W, i + 1, n, st, key=True)
        out.append(c.page())
    return out


def _pager(c: _Canvas, x: int, page: int, pages: int, st: _Style, key: bool) -> None:
    """The page counter ("2/3") and, when a key turns the pages, the page key's badge."""
    W, H = c.size
    region = (x, 0, W, H)
    f = fonts.font(fonts.SMALL_PX, False, st.lang)
    label = f"{page}/{pages}"
    tw = int(round(_length(f, label)))
    c.text(x + (PAGER_W - tw) // 2, 0, label, f, region, row_h=ROW + 4, role="pager")
    if key:
        bf = st.badge_font()
        bw = int(round(_length(bf, str(PAGE_KEY)))) + 6
        _badge(c, x + (PAGER_W - bw) // 2, H - LARGE_ROW, PAGE_KEY, region, st)
    c.draw.line((x - 2, 0, x - 2, H - 1), fill=DIM // 2)


def _large_pad_screen(c_: Content, size: tuple[int, int], st: _Style) -> list[Page]:
    """Large text on a PIN pad: the pad unchanged on the right; on the left one 22 px line of
    the message per page (tries left, tag and note follow it) above the masked digits."""
    W, H = size
    col_w = 38
    pad_w = 3 * col_w if c_.pad is not None else 0
    pad_x = W - pad_w
    left_w = (pad_x - 2 * MARGIN - 2) if pad_w else W - 2 * MARGIN
    f = st.font()
    lines: list[str] = []
    for para in list(c_.lines) + [x for x in (c_.tries, c_.tag) if x] + list(c_.note):
        lines += wrap(para, f, left_w - 2, st.lang)  # 2 px for the ink past the last advance
    pages = []
    for line in lines or [""]:
        c = _Canvas(size)
        if line:
            c.text(MARGIN, 0, line, st.fit(line, left_w), (0, 0, MARGIN + left_w, LARGE_ROW), row_h=LARGE_ROW)
        if c_.dots is not None:
            y = LARGE_ROW
            region = (0, y, MARGIN + left_w, H)
            _dots(c, MARGIN, y, *c_.dots, width=left_w, region=region, row_h=LARGE_ROW)
        if c_.pad is not None:
            _pad(c, pad_x, col_w, c_.pad, st)
        pages.append(c.page())
    return pages


# ---------------------------------------------------------------- PIN pad screens


def _pad_screen(c_: Content, size: tuple[int, int], st: _Style) -> list[Page]:
    W, H = size
    col_w = 38
    pad_w = 3 * col_w if c_.pad is not None else 0
    pad_x = W - pad_w
    left_w = (pad_x - 2 * MARGIN - 2) if pad_w else W - 2 * MARGIN
    body = st.font()
    # 「あと2回」 goes beside the masked digits; a longer translation that cannot, goes on the
    # tag row when that is free, else after the message as a paragraph of its own.
    tries_where, lines = None, list(c_.lines)
    if c_.tries and c_.dots is not None:
        room = MARGIN + left_w - (MARGIN + _dots_width(c_.dots[1], left_w) + 8)
        if _length(_fit(c_.tries, room, bold=True, lang=st.lang), c_.tries) <= room:
            tries_where = "beside"
        elif not c_.tag:
            tries_where = "tag_row"
        else:
            lines.append(c_.tries)
    chunks = _paginate([wrap(para, body, left_w, st.lang) for para in lines], 2)
    if c_.note:
        chunks += _paginate([wrap(para, body, left_w, st.lang) for para in c_.note], 2)
    pages = []
    for chunk in chunks:
        c = _Canvas(size)
        for i, line in enumerate(chunk):
            c.text(MARGIN, i * ROW, line, body, (0, i * ROW, MARGIN + left_w, (i + 1) * ROW))
        if c_.dots is not None:
            y = 2 * ROW
            region = (0, y, MARGIN + left_w, y + ROW)
            x = _dots(c, MARGIN, y, *c_.dots, width=left_w, region=region)
            if tries_where == "beside" and c_.tries:
                room = MARGIN + left_w - (x + 8)
                tf = _fit(c_.tries, room, bold=True, lang=st.lang)
                c.text(x + 8, y, c_.tries, tf, region)
        if tries_where == "tag_row" and c_.tries:
            y = 3 * ROW
            c.text(MARGIN, y, c_.tries, _fit(c_.tries, left_w, bold=True, lang=st.lang),
                   (0, y, MARGIN + left_w, y + ROW))
        if c_.tag:
            y = 3 * ROW
            c.text(MARGIN, y, c_.tag, st.fit(c_.tag, left_w), (0, y, MARGIN + left_w, y + ROW))
        if c_.pad is not None:
            _pad(c, pad_x, col_w, c_.pad, st)
        pages.append(c.page())
    return pages


def _dots_geometry(length: int, width: int) -> tuple[int, int]:
    """(circle diameter, gap) of ``length`` masked digits in ``width``."""
    length = max(1, length)
    gap = 6 if length <= 6 else 3
    return max(5, min(14, (width - (length - 1) * gap) // length)), gap


def _dots_width(length: int, width: int) -> int:
    d, gap = _dots_geometry(length, width)
    return max(1, length) * d + (max(1, length) - 1) * gap


def _dots(c: _Canvas, x: int, row_y: int, entered: int, length: int, width: int,
          region: tuple[int, int, int, int], row_h: int = ROW) -> int:
    """The masked digits as circles, ● for typed and ○ for still to type; returns the right end."""
    length = max(1, length)
    entered = max(0, min(entered, length))
    d, gap = _dots_geometry(length, width)
    y = row_y + (row_h - d) // 2
    for i in range(length):
        x0 = x + i * (d + gap)
        box = (x0, y, x0 + d - 1, y + d - 1)
        if i < entered:
            c.draw.ellipse(box, fill=FG)
        else:
            c.draw.ellipse(box, outline=FG, width=2 if d >= 10 else 1)
    right = x + length * d + (length - 1) * gap
    c.boxes.append(TextBox(dots_text(entered, length), (x, y, right, y + d), region, d, kind="shape"))
    return right


def _pad(c: _Canvas, x0: int, col_w: int, layout: tuple[str, ...], st: _Style) -> None:
    for i, label in enumerate(layout):
        r, col = divmod(i, 3)
        x, y = x0 + col * col_w, r * ROW
        c.draw.rounded_rectangle((x + 1, y, x + col_w - 1, y + ROW - 1), radius=3, outline=DIM)
        if label.isdigit():
            f = fonts.font(fonts.BODY_PX, True, st.lang)
        else:
            f = _fit(label, col_w - 4, lang=st.lang)
        tw = int(round(_length(f, label)))
        c.text(x + (col_w - tw) // 2, y, label, f, (x, y, x + col_w, y + ROW), role="pad")


def is_pad_screen(c: Content) -> bool:
    """PIN and staff-password screens: every key is a digit there (no page key)."""
    return c.dots is not None or c.pad is not None


def layout_content(c: Content, size: tuple[int, int] = (256, 64), large: bool = False) -> list[Page]:
    """Pages for already built words (the language is ``c.lang``)."""
    st = _Style(c.lang, large)
    if is_pad_screen(c):
        return _large_pad_screen(c, size, st) if large else _pad_screen(c, size, st)
    return _large_standard(c, size, st) if large else _standard(c, size, st)


def layout_pages(screen: Screen, size: tuple[int, int] = (256, 64), lang: str = DEFAULT_LANG,
                 large: bool = False) -> list[Page]:
    """Pages with the text boxes drawn on each (for tests and the gallery)."""
    return layout_content(content(screen, lang), size, large)


def render(screen: Screen, size: tuple[int, int] = (256, 64), lang: str = DEFAULT_LANG,
           large: bool = False) -> list[Image.Image]:
    """One or more "L" (greyscale) images of ``size`` for ``screen`` in ``lang``."""
    return [p.image for p in layout_pages(screen, size, lang, large)]
