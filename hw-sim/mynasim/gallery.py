"""``mynasim gallery``: every screen state rendered to PNG in every language, with an HTML index.

The states come from :func:`gallery_states`, which walks every screen id in
``mynad.ui.screens.SCREENS`` through the parameter values the flow emits
(cert cases, method choices, each face hint, each consent item with and without
a previous answer, PIN entry 0..4 digits, tries 3/2/1, errors, the language menu, ...).
Each state is rendered in every language of ``mynad.ui.i18n.LANGUAGES``, in normal and
in large text. Each page is written ×3 (nearest neighbour) on a dark bezel, so the
pixels look as they will on the panel. The index groups the states by screen id, one
row per state and one column per language.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from mynad.core.codes import CARD_UNEXPECTED, CODES, screen_params
from mynad.ui.i18n import LANG_CODES, language
from mynad.ui.render import render
from mynad.ui.screens import CONSENT_ITEMS, SCREENS, Screen
from mynad.ui.texts import FACE_HINTS, FACE_NOTES, screen_text

SCALE = 3
BEZEL = 12
BEZEL_COLOUR = (28, 30, 34)
OLED_TINT = (255, 214, 120)  # the common amber/yellow SSD1322 glass; white panels exist too

# A fixed layout, so the gallery is the same on every run.
LAYOUT = ("7", "3", "9", "1", "0", "5", "8", "2", "6", "取消", "4", "クリア")


def gallery_states() -> list[tuple[str, Screen]]:
    """(label, Screen) for every state worth looking at; covers every id in SCREENS."""
    s: list[tuple[str, Screen]] = []

    def add(label: str, sid: str, **params: Any) -> None:
        s.append((label, Screen(sid, params)))

    add("idle", "idle", mode="auto")
    add("idle, 目視確認 armed", "idle", mode="visual")
    add("reading", "reading")
    add("cert expiring (3 months)", "cert_expiring")
    add("cert expired, grace", "cert_grace")
    add("cert expired past grace", "cert_expired")
    for choices in (("face", "pin", "proxy", "staff"), ("face", "pin", "staff"), ("pin", "proxy", "staff"),
                    ("face", "staff"), ("staff",)):
        add(f"method choice {'/'.join(choices)}", "method_choice", choices=choices)
    for note in FACE_NOTES:
        add(f"method choice, face not offered: {note}", "method_choice", choices=("pin", "proxy", "staff"), note=note)
    for i, hint in enumerate(FACE_HINTS):
        add(f"face hint {hint}", "face_guide", hint=hint, attempt=1 + i % 3, attempts=3)
    add("face hint, unknown key", "face_guide", hint="something_new", attempt=1, attempts=1)
    add("face checking", "face_checking")
    add("face failed: pin/staff", "face_failed", choices=("pin", "staff"), attempts_left=0)
    add("face failed: staff only", "face_failed", choices=("staff",), attempts_left=0)
    for entered in range(5):
        add(f"PIN {entered} digits", "pin_entry", layout=LAYOUT, entered=entered, tries_left=3, wrong=False,
            proxy=False)
    for tries in (3, 2, 1, None):
        add(f"PIN wrong, tries {tries}", "pin_entry", layout=LAYOUT, entered=0, tries_left=tries, wrong=True,
            proxy=False)
    add("PIN by proxy", "pin_entry", layout=LAYOUT, entered=1, tries_left=2, wrong=False, proxy=True)
    add("PIN before the layout arrives", "pin_entry", layout=(), entered=0, tries_left=3, wrong=False, proxy=False)
    add("PIN last try warning", "pin_last_try")
    add("PIN backoff", "pin_backoff", seconds=3)
    add("PIN locked: face/staff", "pin_locked", choices=("face", "staff"))
    add("PIN locked: staff", "pin_locked", choices=("staff",))
    add("PIN throttled 300 s", "pin_throttled", seconds=300)
    add("PIN throttled 45 s", "pin_throttled", seconds=45)
    add("verifying", "verifying")
    add("host wait", "host_wait")
    add("consent carryover (4)", "consent_carryover",
        previous={"surgery": True, "care_medicine": True, "checkup": False, "comprehensive": True})
    add("consent carryover (5)", "consent_carryover", previous={k: i % 2 == 0 for i, k in enumerate(CONSENT_ITEMS)})
    for i, item in enumerate(CONSENT_ITEMS):
        for prev in (None, True, False):
            add(f"consent {item}, previous {prev}", "consent", item=item, index=i + 1, total=len(CONSENT_ITEMS),
                previous=prev)
    add("registration offer", "registration_offer")
    add("registration done", "registration_done")
    add("done", "done", name="マイナ タロウ", qualification_only=False)
    add("done, qualification only", "done", name="マイナ ハナコ", qualification_only=True)
    add("done, no name", "done", name="", qualification_only=False)
    add("remove card", "remove_card", reminder=False)
    add("remove card, reminder", "remove_card", reminder=True)
    for cause in CODES:  # one screen per reader code, as the flow shows it (docs/error-codes.md)
        if cause.screen is not None:
            add(f"code {cause.code}: {cause.reason}", cause.screen, **screen_params(cause))
    add("card error, unknown reason", "card_error", code=CARD_UNEXPECTED.code, reason="unexpected: KeyError")
    add("host error, a code of the host's own", "host_error", code="099")
    add("saving result", "saving")
    add("saving result, disk full", "saving", code="040")
    for entered in (0, 3, 6):
        add(f"目視確認 password {entered}", "visual_check", stage="password", entered=entered, layout=LAYOUT, length=6)
    add("目視確認 password, no layout yet", "visual_check", stage="password", entered=0)
    add("目視確認 confirm", "visual_check", stage="confirm", entered=0)
    add("目視確認 staff lockout", "visual_check", stage="locked")
    add("目視確認 no staff password", "visual_check", stage="not_set")
    for reason in ("user", "timeout", "card_removed"):
        add(f"cancelled {reason}", "cancelled", reason=reason)
    add("language menu (from Japanese)", "language", current="ja")
    add("language menu (from English)", "language", current="en")
    missing = set(SCREENS) - {scr.id for _, scr in s}
    assert not missing, f"gallery misses screens {sorted(missing)}"
    return s


def _frame(page: Image.Image) -> Image.Image:
    big = page.convert("L").resize((page.width * SCALE, page.height * SCALE), Image.Resampling.NEAREST)
    glass = Image.merge("RGB", [big.point(lambda v, t=t: v * t // 255) for t in OLED_TINT])
    out = Image.new("RGB", (glass.width + 2 * BEZEL, glass.height + 2 * BEZEL), BEZEL_COLOUR)
    ImageDraw.Draw(out).rectangle((BEZEL - 2, BEZEL - 2, BEZEL + glass.width + 1, BEZEL + glass.height + 1),
                                  outline=(60, 62, 68))
    out.paste(glass, (BEZEL, BEZEL))
    return out


def _json(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def build_gallery(out: Path, langs: tuple[str, ...] = LANG_CODES, large: bool = True) -> Path:
    """Render every state in every language of ``langs`` (and, with ``large``, in large text)
    into ``out`` (PNG files + index.html); returns the index path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    modes = (False, True) if large else (False,)
    states = gallery_states()
    cells: dict[tuple[int, str, bool], list[str]] = {}
    for n, (label, screen) in enumerate(states, 1):
        for lang in langs:
            for big in modes:
                pages = render(screen, lang=lang, large=big)
                files = []
                for k, page in enumerate(pages, 1):
                    name = (f"{n:03d}-{screen.id}-{lang}" + ("-large" if big else "")
                            + (f"-p{k}" if len(pages) > 1 else "") + ".png")
                    _frame(page).save(out / name)
                    files.append(name)
                cells[n, lang, big] = files
    head = "".join(f"<th>{html.escape(language(lang).name)}<br><code>{lang}</code></th>" for lang in langs)
    parts = [
        "<!doctype html><html lang='ja'><head><meta charset='utf-8'><title>myna-reader screens</title>",
        "<style>body{font-family:sans-serif;background:#15171a;color:#ddd}table{border-collapse:collapse}"
        "td,th{border:1px solid #333;padding:6px;vertical-align:top}code,pre{font-size:12px;color:#9cf}"
        "pre{white-space:pre-wrap;margin:0;color:#eee;font-size:12px;max-width:260px}"
        "img{display:block;margin-bottom:4px;width:280px}h2{margin-top:28px}"
        ".large{font-size:11px;color:#aaa;margin-top:8px}</style>",
        "</head><body><h1>myna-reader: every screen state in every language</h1>",
        f"<p>{len(states)} states x {len(langs)} languages{' x (normal, large text)' if large else ''}, "
        f"panel 256x64 SSD1322 shown x{SCALE} (scaled to fit). Pages of a screen are cycled on the device "
        "(large text: key 9 shows the next page).</p>",
    ]
    by_screen: dict[str, list[int]] = {}
    for n, (_, screen) in enumerate(states, 1):
        by_screen.setdefault(screen.id, []).append(n)
    parts.append("<p>" + " · ".join(f"<a href='#{sid}'>{sid}</a>" for sid in by_screen) + "</p>")
    for sid, numbers in by_screen.items():
        parts.append(f"<h2 id='{html.escape(sid)}'><b>{html.escape(sid)}</b></h2>")
        parts.append(f"<table><tr><th>#</th><th>state</th>{head}</tr>")
        for n in numbers:
            label, screen = states[n - 1]
            params = json.dumps(_json(dict(screen.params)), ensure_ascii=False)
            row = [f"<tr><td>{n}</td><td>{html.escape(label)}<br><code>{html.escape(params)}</code></td>"]
            for lang in langs:
                cell = "".join(f"<img src='{html.escape(f)}' alt='{html.escape(label)} ({lang})'>"
                               for f in cells[n, lang, False])
                cell += f"<pre>{html.escape(screen_text(screen, lang))}</pre>"
                if large:
                    cell += "<div class='large'>large text</div>" + "".join(
                        f"<img src='{html.escape(f)}' alt='{html.escape(label)} ({lang}, large)'>"
                        for f in cells[n, lang, True])
                row.append(f"<td>{cell}</td>")
            parts.append("".join(row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
