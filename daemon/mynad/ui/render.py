"""Draw a Screen for the 256x64 SSD1322 panel (4-bit greyscale), page by page.

Layout grid (docs/display.md): four rows of 16 px. Body text is 14 px (kanji
14 px tall), never smaller than 12 px. The bottom row holds the key hints when
the screen has any: the negative key (10) at the left, the positive key (12) at
the right, the way the keys sit on the 3x4 keypad below the panel. Choices
(keys 1..4) go in a two-column grid above it. A message that does not fit is
split into pages (the shell cycles them); choices and key hints are on every page.

PIN pad screens put the 3x4 pad, as laid out this time, on the right and the
message, masked digits (● ○ ○ ○) and 「あと2回」 on the left.

Rendering is pure: the same Screen always gives the same pixels. ``layout_pages``
also returns every text box drawn, so tests can prove nothing leaves the panel
or overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from mynad.ui import fonts
from mynad.ui.screens import Screen
from mynad.ui.texts import NEG_KEY, POS_KEY, Content, content, dots_text

ROW = 16  # px per text row
MARGIN = 2  # px left and right of full-width text
FG = 255  # text
DIM = 96  # pad cell outlines, separators
BADGE_FG = 0  # key number inside its filled badge

# Kinsoku: characters a line must not start / end with.
_NO_START = set("、。，．,.・：:；;？?！!ー―-」』）)〕］]｝}〉》…ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々")
_NO_END = set("「『（(〔［[｛{〈《")
_BREAK_AFTER = set("、。，！？ 」）")
_PARTICLES = set("をにはがでとへの")


@dataclass
class TextBox:
    text: str
    box: tuple[int, int, int, int]  # ink bounding box on the page
    region: tuple[int, int, int, int]  # where it was allowed to go
    size: int  # font size in px (for shapes: their height)
    kind: str = "text"  # "text" | "shape" (the masked-digit circles)


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
             region: tuple[int, int, int, int], fill: int = FG, row_h: int = ROW) -> int:
        """Draw ``text`` left-aligned at ``x``, centred in the row at ``row_y``; returns its width."""
        y = row_y + _y_offset(font, row_h)
        if text:
            self.draw.text((x, y), text, font=font, fill=fill)
            box = self.draw.textbbox((x, y), text, font=font)
            self.boxes.append(TextBox(text, tuple(int(v) for v in box), region, int(font.size)))
        return int(round(font.getlength(text)))

    def page(self) -> Page:
        return Page(self.image, self.boxes)


def _y_offset(font: ImageFont.FreeTypeFont, row_h: int) -> int:
    """Top offset for text in a row of ``row_h``: the full Japanese range (dakuten on
    top, 髙) is centred in the row when it fits with Latin descenders (a name in
    romaji); when it cannot (14 px Noto needs 17 px), the top stays inside the row
    and a descender may hang 1 px into the next row's gap."""
    tall = min(font.getbbox(ch)[1] for ch in "ごぎ髙漢「（")
    low = max(font.getbbox(ch)[3] for ch in "漢gjpqy")
    free = row_h - (low - tall)
    return max(0, free // 2) - tall


def _fit(text: str, width: int, sizes: tuple[int, ...] = (fonts.BODY_PX, fonts.SMALL_PX),
         bold: bool = False) -> ImageFont.FreeTypeFont:
    """The largest of ``sizes`` in which ``text`` fits ``width`` (else the smallest)."""
    for s in sizes:
        f = fonts.font(s, bold)
        if f.getlength(text) <= width:
            return f
    return fonts.font(sizes[-1], bold)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break Japanese text into lines no wider than ``width``, with simple kinsoku."""
    lines: list[str] = []
    rest = text.strip()
    while rest:
        if font.getlength(rest) <= width:
            lines.append(rest)
            break
        n = 1
        while n < len(rest) and font.getlength(rest[:n + 1]) <= width:
            n += 1
        cut = _natural_break(rest, n)
        if cut == n and 0 < len(rest) - n <= 2:  # no orphan of one or two characters
            cut = max(1, n - 3)
        while cut > 1 and (rest[cut:cut + 1] in _NO_START and rest[cut:cut + 1] != "" or rest[cut - 1] in _NO_END):
            cut -= 1
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def _natural_break(rest: str, n: int) -> int:
    """Where to end a line that can hold ``n`` characters of ``rest``: after punctuation
    in its last two thirds, else after a particle among its last 9 characters, else at n."""
    for j in range(n, max(n // 3, 1) - 1, -1):
        if rest[j - 1] in _BREAK_AFTER and rest[j:j + 1] not in _NO_START:
            return j
    for j in range(n, max(n - 9, n // 2, 1) - 1, -1):
        if rest[j - 1] in _PARTICLES and rest[j:j + 1] not in _NO_START and rest[j:j + 1] not in _PARTICLES:
            return j
    return n


def _badge(c: _Canvas, x: int, row_y: int, key: int, region: tuple[int, int, int, int]) -> int:
    """A filled key badge with the key's position number; returns its width."""
    f = fonts.font(fonts.SMALL_PX, bold=True)
    label = str(key)
    tw = int(round(f.getlength(label)))
    w = tw + 6
    c.draw.rounded_rectangle((x, row_y + 1, x + w - 1, row_y + ROW - 2), radius=3, fill=FG)
    _, top, _, bottom = f.getbbox("0")
    y = row_y + (ROW - (bottom - top)) // 2 - top - 1
    c.draw.text((x + 3, y), label, font=f, fill=BADGE_FG)
    c.boxes.append(TextBox(label, tuple(int(v) for v in c.draw.textbbox((x + 3, y), label, font=f)),
                           region, int(f.size)))
    return w


def _hint_width(key: int, label: str, font: ImageFont.FreeTypeFont) -> int:
    f = fonts.font(fonts.SMALL_PX, bold=True)
    return int(round(f.getlength(str(key)))) + 6 + 3 + int(round(font.getlength(label)))


def _hint(c: _Canvas, x: int, row_y: int, key: int, label: str, font: ImageFont.FreeTypeFont,
          region: tuple[int, int, int, int]) -> None:
    w = _badge(c, x, row_y, key, region)
    c.text(x + w + 3, row_y, label, font, region)


def _footer(c: _Canvas, row_y: int, neg: str | None, pos: str | None) -> None:
    W = c.size[0]
    region = (0, row_y, W, row_y + ROW)
    items = [(k, t) for k, t in ((NEG_KEY, neg), (POS_KEY, pos)) if t]
    for size in (fonts.BODY_PX, fonts.SMALL_PX):
        f = fonts.font(size)
        total = sum(_hint_width(k, t, f) for k, t in items) + 8 * (len(items) - 1) + 2 * MARGIN
        if total <= W:
            break
    if neg:
        _hint(c, MARGIN, row_y, NEG_KEY, neg, f, region)
    if pos:
        _hint(c, W - MARGIN - _hint_width(POS_KEY, pos, f), row_y, POS_KEY, pos, f, region)
    c.draw.line((0, row_y, W - 1, row_y), fill=DIM // 2)


def _choice_rows(choices: tuple[tuple[int, str], ...], width: int) -> list[list[tuple[int, str, ImageFont.FreeTypeFont]]]:
    """Choices two per row when both fit half the width, else one per row."""
    half = width // 2 - MARGIN
    rows: list[list[tuple[int, str, ImageFont.FreeTypeFont]]] = []
    pending = list(choices)
    while pending:
        k, t = pending.pop(0)
        f = _fit(t, half - _hint_width(k, "", fonts.font(fonts.BODY_PX)))
        if _hint_width(k, t, f) <= half and pending:
            k2, t2 = pending[0]
            f2 = _fit(t2, half - _hint_width(k2, "", fonts.font(fonts.BODY_PX)))
            if _hint_width(k2, t2, f2) <= half:
                pending.pop(0)
                rows.append([(k, t, f), (k2, t2, f2)])
                continue
        if _hint_width(k, t, f) > half:
            f = _fit(t, width - 2 * MARGIN - _hint_width(k, "", fonts.font(fonts.BODY_PX)))
        rows.append([(k, t, f)])
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


def _standard(c_: Content, size: tuple[int, int]) -> list[Page]:
    W, H = size
    nrows = H // ROW
    has_footer = bool(c_.neg or c_.pos)
    crow = _choice_rows(c_.choices, W)
    body_rows = max(1, nrows - len(crow) - (1 if has_footer else 0))
    body_font = fonts.font(fonts.BODY_PX)
    chunks = _paginate([wrap(para, body_font, W - 2 * MARGIN) for para in c_.lines], body_rows)
    pages = []
    for chunk in chunks:
        c = _Canvas(size)
        top = (body_rows - len(chunk)) * ROW // 2 if len(chunks) == 1 else 0
        for i, line in enumerate(chunk):
            y = top + i * ROW
            c.text(MARGIN, y, line, body_font, (0, y, W, y + ROW))
        y = body_rows * ROW
        for row in crow:
            for j, (k, t, f) in enumerate(row):
                x = MARGIN + j * (W // 2)
                region = (x, y, x + (W // 2 if len(row) > 1 else W) - MARGIN, y + ROW)
                _hint(c, x, y, k, t, f, region)
            y += ROW
        if has_footer:
            _footer(c, H - ROW, c_.neg, c_.pos)
        pages.append(c.page())
    return pages


def _pad_screen(c_: Content, size: tuple[int, int]) -> list[Page]:
    W, H = size
    col_w = 38
    pad_w = 3 * col_w if c_.pad is not None else 0
    pad_x = W - pad_w
    left_w = (pad_x - 2 * MARGIN - 2) if pad_w else W - 2 * MARGIN
    body = fonts.font(fonts.BODY_PX)
    chunks = _paginate([wrap(para, body, left_w) for para in c_.lines], 2)
    if c_.note:
        chunks += _paginate([wrap(para, body, left_w) for para in c_.note], 2)
    pages = []
    for chunk in chunks:
        c = _Canvas(size)
        for i, line in enumerate(chunk):
            c.text(MARGIN, i * ROW, line, body, (0, i * ROW, MARGIN + left_w, (i + 1) * ROW))
        if c_.dots is not None:
            y = 2 * ROW
            region = (0, y, MARGIN + left_w, y + ROW)
            x = _dots(c, MARGIN, y, *c_.dots, width=left_w, region=region)
            if c_.tries:
                tf = fonts.font(fonts.BODY_PX, bold=True)
                c.text(x + 8, y, c_.tries, tf, region)
        if c_.tag:
            y = 3 * ROW
            c.text(MARGIN, y, c_.tag, _fit(c_.tag, left_w), (0, y, MARGIN + left_w, y + ROW))
        if c_.pad is not None:
            _pad(c, pad_x, col_w, c_.pad)
        pages.append(c.page())
    return pages


def _dots(c: _Canvas, x: int, row_y: int, entered: int, length: int, width: int,
          region: tuple[int, int, int, int]) -> int:
    """The masked digits as circles, ● for typed and ○ for still to type; returns the right end."""
    length = max(1, length)
    entered = max(0, min(entered, length))
    gap = 6 if length <= 6 else 3
    d = max(5, min(14, (width - (length - 1) * gap) // length))
    y = row_y + (ROW - d) // 2
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


def _pad(c: _Canvas, x0: int, col_w: int, layout: tuple[str, ...]) -> None:
    for i, label in enumerate(layout):
        r, col = divmod(i, 3)
        x, y = x0 + col * col_w, r * ROW
        c.draw.rounded_rectangle((x + 1, y, x + col_w - 1, y + ROW - 1), radius=3, outline=DIM)
        if label.isdigit():
            f = fonts.font(fonts.BODY_PX, bold=True)
        else:
            f = _fit(label, col_w - 4)
        tw = int(round(f.getlength(label)))
        c.text(x + (col_w - tw) // 2, y, label, f, (x, y, x + col_w, y + ROW))


def layout_pages(screen: Screen, size: tuple[int, int] = (256, 64)) -> list[Page]:
    """Pages with the text boxes drawn on each (for tests and the gallery)."""
    c = content(screen)
    if c.dots is not None or c.pad is not None:
        return _pad_screen(c, size)
    return _standard(c, size)


def render(screen: Screen, size: tuple[int, int] = (256, 64)) -> list[Image.Image]:
    """One or more "L" (greyscale) images of ``size`` for ``screen``."""
    return [p.image for p in layout_pages(screen, size)]
