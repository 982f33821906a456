"""Message catalogues: complete, in step with the Japanese source, shipped and used.

Japanese is the source language (the msgids); every other language must translate
every text with the same placeholders, the compiled .mo must be the one its .po
gives, every screen keeps its structure (lines, keys) in every language, and no
Japanese is left on a screen shown in another language.
"""

from __future__ import annotations

import gettext
import re
import tomllib
from pathlib import Path

import pytest

from mynad.core import codes
from mynad.ui import catalogs, i18n
from mynad.ui.i18n import DEFAULT_LANG, LANG_CODES, LANGUAGES, TRANSLATED
from mynad.ui.screens import Screen
from mynad.ui.texts import (CONSENT_QUESTIONS, CONSENT_SHORT, FACE_HINTS, FACE_NOTES, LANG_KEY, LANGUAGE_KEY_SCREENS,
                            METHOD_LABELS, content, message_text, screen_text)
from mynasim.gallery import LAYOUT, gallery_states

ROOT = Path(__file__).resolve().parents[2]
STATES = gallery_states()
KANA = re.compile(r"[\u3040-\u30ff]")
HAN = re.compile(r"[\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def test_languages_are_the_ones_asked_for():
    assert LANG_CODES == ("ja", "en", "zh_Hans", "ko", "vi", "pt", "tl")
    assert DEFAULT_LANG == "ja" and TRANSLATED == LANG_CODES[1:]
    assert [lang.name for lang in LANGUAGES][:4] == ["日本語", "English", "中文(简体)", "한국어"]


def test_catalogues_have_no_problem():
    """Every Japanese text of the sources (ui texts and the reader-code table) is in every
    catalogue, translated, not fuzzy, with the same placeholders; each .mo is its .po compiled."""
    assert catalogs.problems() == []


def test_template_holds_every_japanese_text_of_the_sources():
    wanted = set(FACE_HINTS.values()) | set(FACE_NOTES.values()) | set(METHOD_LABELS.values())
    wanted |= set(CONSENT_QUESTIONS.values()) | set(CONSENT_SHORT.values())
    wanted |= {e.patient for e in codes.CODES}
    ids = {m.id for m in catalogs.template() if m.id}
    assert wanted <= ids, sorted(wanted - ids)
    committed = {m.id for m in catalogs.read_po(catalogs.TEMPLATE) if m.id}
    assert committed == ids, "mynad/locale/mynad.pot is behind the sources: python -m mynad.ui.catalogs all"


def test_reader_code_texts_are_extracted_from_the_table_syntax(tmp_path):
    """A code added to the table is in the next extract without marking (patient= too)."""
    src = tmp_path / "codes.py"
    src.write_text('A = _c("001", "mute", "置き直してください", "x", "y", "z", "w", ())\n'
                   'B = ReaderCode(code="002", reason="r", patient="別のカードです", meaning_ja="m")\n'
                   'C = other("003", "r", "これは違う")\n', encoding="utf-8")
    with src.open("rb") as f:
        found = [(m, c) for _, _, m, c in catalogs.extract_reader_codes(f, None, None, {})]
    assert found == [("置き直してください", ["reader code 001"]), ("別のカードです", ["reader code ?"])]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_catalogue_entry_keeps_its_placeholders(lang):
    t = i18n.translations(lang)
    assert isinstance(t, gettext.GNUTranslations)
    for msgid in (m.id for m in catalogs.read_po(catalogs.TEMPLATE) if m.id):
        got = t.gettext(msgid)
        assert got != msgid or not KANA.search(msgid), (lang, msgid)
        assert sorted(PLACEHOLDER.findall(got)) == sorted(PLACEHOLDER.findall(msgid)), (lang, msgid, got)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_reader_code_texts_are_translated(lang):
    for cause in codes.CODES:
        assert i18n.gettext(cause.patient, lang) != cause.patient, (lang, cause.code)


@pytest.mark.parametrize("lang", LANG_CODES)
def test_screens_keep_their_structure_in_every_language(lang):
    """Row by row with the Japanese: the same number of message lines, the same keys."""
    for label, screen in STATES:
        ja, c = content(screen, "ja"), content(screen, lang)
        assert c.lang == lang
        assert len(c.lines) == len(ja.lines), (label, lang)
        assert [k for k, _ in c.choices] == [k for k, _ in ja.choices], (label, lang)
        for a, b in ((ja.neg, c.neg), (ja.pos, c.pos), (ja.mid, c.mid), (ja.tag, c.tag), (ja.tries, c.tries)):
            assert (a is None) == (b is None), (label, lang)
        assert len(c.note) == len(ja.note) and c.dots == ja.dots and (c.pad is None) == (ja.pad is None)
        if c.pad is not None:  # digits stay where they are; 取消 / クリア are translated in place
            assert [x for x in c.pad if x.isdigit()] == [x for x in ja.pad if x.isdigit()]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_no_japanese_left_on_a_screen_in_another_language(lang):
    names = ("マイナ タロウ", "マイナ ハナコ")  # the host's name for the patient is data, not text
    for label, screen in STATES:
        text = screen_text(screen, lang)
        for n in names:
            text = text.replace(n, "")
        text = text.replace("日本語", "")  # the language menu names each language in its own words
        assert not KANA.search(text), (label, lang, text)
        if lang != "zh_Hans":
            assert not HAN.search(text.replace("中文(简体)", "")), (label, lang, text)


def test_language_key_is_on_the_first_screens_only():
    for label, screen in STATES:
        c = content(screen)
        assert (c.mid is not None) == (screen.id in LANGUAGE_KEY_SCREENS), label
        if c.mid:
            assert f"{LANG_KEY}: {c.mid}" in screen_text(screen)
            for lang in LANG_CODES:  # findable whatever the language: "Language" stays in English
                assert content(screen, lang).mid.startswith("Language"), lang


def test_language_menu_names_each_language_in_its_own_words():
    for lang in LANG_CODES:
        c = content(Screen("language", {"current": lang}), lang)
        assert c.choices == tuple((i + 1, x.name) for i, x in enumerate(LANGUAGES))
        assert c.choice_langs == LANG_CODES and c.neg and c.pos


def test_screen_text_in_a_language():
    s = Screen("method_choice", {"choices": ("face", "pin", "staff")})
    assert "1: Face check" in screen_text(s, "en") and "10: Quit" in screen_text(s, "en")
    assert "Vui lòng" in screen_text(Screen("idle", {"mode": "auto"}), "vi")
    assert "Error code: 001" in screen_text(Screen("card_error", {"code": "001", "reason": "mute"}), "en")
    assert screen_text(s) == screen_text(s, "ja") and "顔認証を行う" in screen_text(s)
    assert "Tries left: 2" in screen_text(Screen("pin_entry", {"layout": LAYOUT, "entered": 1, "tries_left": 2,
                                                               "wrong": True, "proxy": False}), "en")
    # an unknown language falls back to Japanese instead of failing a screen
    assert screen_text(s, "xx") == screen_text(s, "ja")


@pytest.mark.parametrize("lang", LANG_CODES)
def test_message_text_never_says_the_pad_layout(lang):
    """What voice guidance may speak: no key position of the shuffled pad, no count of digits."""
    for label, screen in STATES:
        c = content(screen, lang)
        text = message_text(screen, lang)
        assert "●" not in text and "○" not in text, label
        if c.pad is not None:
            rows = [" ".join(c.pad[r * 3:r * 3 + 3]) for r in range(4)]
            assert not any(r in text for r in rows), (label, text)
            assert not re.search(r"\d \d", text), (label, text)


def test_catalogues_ship_as_package_data():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = cfg["tool"]["setuptools"]["package-data"]["mynad"]
    pkg = ROOT / "daemon" / "mynad"
    for lang in TRANSLATED:
        for suffix in ("mo", "po"):
            rel = f"locale/{lang}/LC_MESSAGES/mynad.{suffix}"
            assert (pkg / rel).is_file() and any(Path(rel).match(g) for g in globs), rel
        assert i18n.mo_path(lang).is_file()
    assert any(Path("locale/mynad.pot").match(g) for g in globs)
    pins = cfg["project"]["optional-dependencies"]["test"]
    assert any(re.fullmatch(r"babel==[\d.]+", p) for p in pins), pins


def test_a_missing_catalogue_is_a_typed_error(monkeypatch, tmp_path):
    monkeypatch.setattr(i18n, "_cache", {})
    monkeypatch.setattr(i18n, "mo_path", lambda code: tmp_path / code / "mynad.mo")
    with pytest.raises(i18n.CatalogueMissing, match="python -m mynad.ui.catalogs compile"):
        i18n.translations("en")
    assert i18n.gettext("戻る", "ja") == "戻る"  # Japanese needs no catalogue
