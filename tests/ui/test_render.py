"""Every screen renders, for every documented parameter combination, inside the panel."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynad.ui import fonts
from mynad.ui.pinpad import new_layout
from mynad.ui.render import layout_pages, render, wrap
from mynad.ui.screens import CONSENT_ITEMS, SCREENS, Screen
from mynad.ui.texts import ERRORS, FACE_HINTS, content, screen_text
from mynasim.gallery import gallery_states

SIZE = (256, 64)
STATES = gallery_states()


def check_pages(screen: Screen) -> list:
    pages = layout_pages(screen, SIZE)
    assert pages, screen
    for page in pages:
        assert page.image.size == SIZE and page.image.mode in ("1", "L")
        assert page.boxes or screen.id in (), screen
        for b in page.boxes:
            x0, y0, x1, y1 = b.box
            assert 0 <= x0 and 0 <= y0 and x1 <= SIZE[0] and y1 <= SIZE[1], (screen, b)
            rx0, ry0, rx1, ry1 = b.region
            # a Latin descender may hang 1 px below its row (render._y_offset)
            assert rx0 <= x0 and ry0 <= y0 and x1 <= rx1 and y1 <= ry1 + 1, (screen, b)
            assert b.kind == "shape" or b.size >= fonts.MIN_PX, (screen, b)
        for i, a in enumerate(page.boxes):
            for b in page.boxes[i + 1:]:
                overlap = (a.box[0] < b.box[2] and b.box[0] < a.box[2]
                           and a.box[1] < b.box[3] - 1 and b.box[1] < a.box[3] - 1)
                assert not overlap, (screen, a, b)
    return pages


def test_gallery_covers_every_screen_id():
    assert {s.id for _, s in STATES} == set(SCREENS)


@pytest.mark.parametrize("label,screen", STATES, ids=[label for label, _ in STATES])
def test_state_renders_inside_panel(label, screen):
    pages = check_pages(screen)
    text = screen_text(screen)
    assert text.strip()
    # every word on the panel is in the text (the text is what the panel says)
    drawn = "".join(b.text for p in pages for b in p.boxes)
    assert drawn, label
    for p in pages:
        for b in p.boxes:
            assert b.text in text, (label, b.text)


def test_every_message_line_is_drawn():
    """Nothing of the message is dropped by pagination."""
    for label, screen in STATES:
        c = content(screen)
        drawn = "".join(b.text for p in layout_pages(screen, SIZE) for b in p.boxes if b.kind == "text")
        for para in c.lines + c.note:
            assert para.replace(" ", "") in drawn.replace(" ", ""), (label, para)


def test_body_glyphs_are_at_least_12px_tall():
    for size in (fonts.SMALL_PX, fonts.BODY_PX, fonts.LARGE_PX):
        for bold in (False, True):
            _, top, _, bottom = fonts.font(size, bold).getbbox("漢")
            assert bottom - top >= 12
    _, top, _, bottom = fonts.font(fonts.BODY_PX).getbbox("暗証番号")
    assert bottom - top >= 13
    with pytest.raises(ValueError):
        fonts.font(10)


def test_font_is_japanese():
    f = fonts.font()
    assert f.getlength("あ") == f.size  # full-width kana, not a fallback box
    assert "CJK" in f.getname()[0] or "IPA" in f.getname()[0] or "Takao" in f.getname()[0]


def test_pin_entry_shows_layout_mask_and_tries():
    layout = ("7", "3", "9", "1", "0", "5", "8", "2", "6", "取消", "4", "クリア")
    s = Screen("pin_entry", {"layout": layout, "entered": 2, "tries_left": 2, "wrong": True, "proxy": False})
    text = screen_text(s)
    assert "● ● ○ ○" in text and "あと2回" in text and "正しい暗証番号を入力してください" in text
    assert "取消 4 クリア" in text
    drawn = [b.text for p in layout_pages(s) for b in p.boxes]
    for label in layout:
        assert label in drawn
    s3 = Screen("pin_entry", {"layout": layout, "entered": 0, "tries_left": 3, "wrong": False, "proxy": False})
    assert "あと" not in screen_text(s3) and "暗証番号（数字4桁）を入力してください" in screen_text(s3)
    unknown = Screen("pin_entry", {"layout": layout, "entered": 0, "tries_left": None, "wrong": False, "proxy": True})
    assert "あと" not in screen_text(unknown) and "代理人" in screen_text(unknown)


def test_key_hints_follow_the_key_contract():
    t = screen_text(Screen("method_choice", {"choices": ("face", "pin", "staff")}))
    assert "1: 顔認証を行う" in t and "2: 暗証番号を入力" in t and "3: 職員が確認" in t and "10: 終了する" in t
    t = screen_text(Screen("consent", {"item": "checkup", "index": 3, "total": 4, "previous": None}))
    assert "12: 同意する" in t and "10: 同意しない・40歳未満の方" in t
    t = screen_text(Screen("cert_expiring", {}))
    assert "12: 次に進む" in t and "証明書の有効期限が3カ月以内となっています。" in t


def test_texts_from_the_leaflets():
    assert "マイナタロウ様 確認が完了しました。" in screen_text(Screen("done", {"name": "マイナタロウ",
                                                                   "qualification_only": False}))
    assert "エラーコード: 001" in screen_text(Screen("card_error", {"code": "001", "reason": "mute"}))
    assert ERRORS["not_myna"] in screen_text(Screen("card_error", {"code": "002", "reason": "not_myna"}))
    # unknown and 'unexpected: X' reasons fall back instead of failing
    assert "読み取りに失敗しました" in screen_text(Screen("card_error", {"code": "001", "reason": "zzz"}))
    assert "読み取りに失敗しました" in screen_text(Screen("card_error", {"code": "001", "reason": "unexpected: OSError"}))
    assert "電子証明書が失効しています。" in screen_text(Screen("cert_expired", {}))
    assert "資格情報のみ当機関に提供します" in screen_text(Screen("cert_grace", {}))
    assert "カードを忘れずに！" in screen_text(Screen("remove_card", {"reminder": True}))
    assert set(FACE_HINTS) >= {"ok", "retry", "no_face", "many_faces", "too_far", "too_close", "off_centre",
                               "too_dark", "too_bright", "blurred", "hold_still", "turn_left", "turn_right",
                               "blink", "checking"}
    for item in CONSENT_ITEMS:
        screen_text(Screen("consent", {"item": item, "index": 1, "total": 1, "previous": None}))


def test_wrap_never_exceeds_width_and_keeps_every_character():
    f = fonts.font()
    text = "忘れずに顔認証付きカードリーダーからマイナンバーカードを取り出してください。"
    lines = wrap(text, f, 252)
    assert "".join(lines) == text
    assert all(f.getlength(line) <= 252 for line in lines)
    assert not any(line[0] in "、。」）ー" for line in lines)


def test_render_returns_greyscale_images():
    for img in render(Screen("idle", {"mode": "auto"})):
        assert img.mode == "L" and img.size == SIZE and img.getextrema()[1] > 0


# ---------------------------------------------------------------- property tests

names = st.text(alphabet=st.sampled_from("マイナタロウ山田花子佐藤太郎ー　 ABCxyz髙﨑"), max_size=40)
choices = st.lists(st.sampled_from(("face", "pin", "proxy", "staff")), unique=True, max_size=4).map(tuple)


@settings(max_examples=150, deadline=None)
@given(entered=st.integers(0, 4), tries=st.one_of(st.none(), st.integers(0, 3)), wrong=st.booleans(),
       proxy=st.booleans())
def test_pin_entry_any_params(entered, tries, wrong, proxy):
    check_pages(Screen("pin_entry", {"layout": new_layout(), "entered": entered, "tries_left": tries,
                                     "wrong": wrong, "proxy": proxy}))


@settings(max_examples=150, deadline=None)
@given(sid=st.sampled_from(("method_choice", "face_failed", "pin_locked")), ch=choices)
def test_choice_screens_any_choices(sid, ch):
    check_pages(Screen(sid, {"choices": ch, "attempts_left": 0}))


@settings(max_examples=100, deadline=None)
@given(name=names, q=st.booleans())
def test_done_any_name(name, q):
    pages = check_pages(Screen("done", {"name": name, "qualification_only": q}))
    assert pages


@settings(max_examples=100, deadline=None)
@given(item=st.sampled_from(CONSENT_ITEMS), index=st.integers(1, 5), total=st.integers(1, 5),
       prev=st.one_of(st.none(), st.booleans()),
       carry=st.dictionaries(st.sampled_from(CONSENT_ITEMS), st.booleans()))
def test_consent_any(item, index, total, prev, carry):
    check_pages(Screen("consent", {"item": item, "index": index, "total": total, "previous": prev}))
    check_pages(Screen("consent_carryover", {"previous": carry}))


@settings(max_examples=100, deadline=None)
@given(code=st.text(alphabet="0123456789", min_size=0, max_size=4), reason=st.one_of(
    st.sampled_from(sorted(ERRORS)), st.text(max_size=20)), seconds=st.integers(0, 100000),
    hint=st.one_of(st.sampled_from(sorted(FACE_HINTS)), st.text(max_size=10)),
    entered=st.integers(0, 12), length=st.integers(4, 12))
def test_other_screens_any(code, reason, seconds, hint, entered, length):
    check_pages(Screen("card_error", {"code": code, "reason": reason}))
    check_pages(Screen("fault", {"code": code, "reason": reason}))
    check_pages(Screen("host_error", {"code": code}))
    check_pages(Screen("pin_backoff", {"seconds": seconds}))
    check_pages(Screen("pin_throttled", {"seconds": seconds}))
    check_pages(Screen("face_guide", {"hint": hint, "attempt": 1, "attempts": 3}))
    check_pages(Screen("visual_check", {"stage": "password", "entered": min(entered, length),
                                        "layout": new_layout(), "length": length}))


def test_kept_text_measurements_draw_the_same_pixels_and_boxes(monkeypatch) -> None:
    """render keeps getlength/getbbox results per (font, string); a kept value must give what
    measuring again gives, on every kind of screen (pads, choices, pages, large text)."""
    from mynad.ui import render as r
    from mynasim.gallery import gallery_states

    def draw() -> list[tuple[bytes, list]]:
        out = []
        for lang in ("ja", "vi", "ko"):
            for large in (False, True):
                for _label, scr in gallery_states()[::3]:
                    for p in r.layout_pages(scr, lang=lang, large=large):
                        out.append((p.image.tobytes(), [(b.text, b.box, b.region, b.size) for b in p.boxes]))
        return out

    kept_once, kept_twice = draw(), draw()  # the second run draws from kept measurements only
    monkeypatch.setattr(r, "_length", lambda font, text: font.getlength(text))
    monkeypatch.setattr(r, "_bbox", lambda font, text: r._ints(font.getbbox(text)))
    measured = draw()
    assert kept_once == kept_twice == measured
