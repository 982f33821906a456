"""Every screen has a spoken prompt, and no prompt carries a secret (docs/voice.md)."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from mynad.ui.screens import SCREENS, Screen
from mynad.voice.prompts import (REPEAT_KEY, is_pad_screen, safe_screen, speech_lang, spoken_parts,
                                 spoken_text)
from mynasim.gallery import gallery_states

STATES = gallery_states()


def _layouts(n: int, seed: int = 11) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        digits = [str(d) for d in range(10)]
        rng.shuffle(digits)
        out.append(tuple(digits[:9]) + ("取消", digits[9], "クリア"))
    return out


def _layout_sequences(layout: tuple[str, ...]) -> set[str]:
    """Runs of two or more pad digits along a row or a column, as they could be read out."""
    grid = [layout[r * 3:r * 3 + 3] for r in range(4)]
    lines = [list(row) for row in grid] + [[grid[r][c] for r in range(4)] for c in range(3)]
    seqs = set()
    for line in lines:
        for i in range(len(line)):
            for j in range(i + 2, len(line) + 1):
                run = line[i:j]
                if all(x.isdigit() for x in run):
                    seqs.add("".join(run))
    return seqs


@pytest.mark.parametrize("label,screen", STATES, ids=[label for label, _ in STATES])
def test_every_screen_has_a_prompt(label: str, screen: Screen):
    parts = spoken_parts(screen)
    assert parts and all(text.strip() for text, _ in parts), label
    text, voice = spoken_text(screen)
    assert voice == "ja"
    assert "●" not in text and "○" not in text


def test_every_screen_id_is_in_the_gallery_so_every_prompt_is_checked():
    assert {s.id for _, s in STATES} == set(SCREENS)


@pytest.mark.parametrize("label,screen", [(lb, s) for lb, s in STATES if is_pad_screen(s)],
                         ids=[lb for lb, s in STATES if is_pad_screen(s)])
def test_pad_screens_never_speak_the_layout(label: str, screen: Screen):
    base = spoken_text(screen)[0]
    assert not re.search(r"\d\d", base), base  # no two digits in a row at all: not even a key number
    for layout in _layouts(30):
        s = Screen(screen.id, {**dict(screen.params), "layout": layout})
        text = spoken_text(s)[0]
        assert text == base  # the prompt does not depend on the layout ...
        compact = re.sub(r"\s", "", text)
        for seq in _layout_sequences(layout):
            assert seq not in compact, (seq, text)  # ... and holds no run of its digits


def test_pad_prompt_does_not_change_as_digits_are_typed():
    pads = [s for _, s in STATES if s.id == "pin_entry" and s.params.get("layout")]
    texts = {spoken_text(Screen("pin_entry", {**dict(pads[0].params), "entered": n}))[0] for n in range(5)}
    assert len(texts) == 1


def test_the_name_is_never_spoken():
    name = "山田太郎"
    for qualification_only in (False, True):
        s = Screen("done", {"name": name, "qualification_only": qualification_only})
        text = spoken_text(s)[0]
        assert "山田" not in text and "様" not in text
        assert "確認が完了しました" in text
    assert "name" not in safe_screen(Screen("done", {"name": name})).params


def test_keys_are_spoken_and_the_repeat_key_is_free_where_it_is_offered():
    text = spoken_text(Screen("method_choice", {"choices": ("face", "pin", "staff")}))[0]
    assert "1番、顔認証を行う" in text and "10番、終了する" in text
    for _, s in STATES:
        if is_pad_screen(s):
            continue
        from mynad.ui.texts import content

        c = content(s)
        used = {k for k, _ in c.choices}
        assert REPEAT_KEY not in used, s  # key 8 never means something else on a screen without the pad


def test_error_codes_are_read_digit_by_digit():
    text = spoken_text(Screen("host_error", {"code": "020"}))[0]
    assert "0 2 0" in text


def test_tagalog_is_spoken_from_the_english_texts():
    assert speech_lang("tl") == "en"
    assert speech_lang("zh_Hans") == "zh_Hans" and speech_lang("xx") == "ja"


def test_language_menu_names_each_language_in_its_own_voice():
    parts = spoken_parts(Screen("language", {}))
    voices = [v for _, v in parts]
    assert {"ja", "en", "zh", "ko", "vi", "pt"} <= set(voices)
    assert all(a != b for a, b in itertools.pairwise(voices))  # neighbours of one voice are merged


def test_a_translated_screen_is_spoken_in_its_language_and_voice(monkeypatch):
    """With a catalogue for the language (stood in for here), its words and its voice are used."""
    import dataclasses

    from mynad.ui import texts

    real = texts.content

    def english(screen, lang="ja"):
        c = real(screen)
        if lang == "ja":
            return c
        assert lang in ("en", "zh_Hans")
        return dataclasses.replace(c, lines=("Choose how to confirm who you are",),
                                   choices=tuple((k, f"way {k}") for k, _ in c.choices), neg="Quit", mid=None)

    monkeypatch.setattr(texts, "content", english)
    s = Screen("method_choice", {"choices": ("face", "pin")})
    assert spoken_parts(s, "en") == [("Choose how to confirm who you are. Key 1: way 1. Key 2: way 2. "
                                      "Key 10: Quit.", "en")]
    assert spoken_parts(s, "tl")[0][1] == "en"  # Tagalog: the English words, the English voice
    assert spoken_parts(s, "zh_Hans")[0][1] == "zh"
    assert spoken_parts(s, "ja")[0][1] == "ja"


@pytest.mark.parametrize("lang", ["ja", "en", "zh_Hans", "ko", "vi", "pt", "tl"])
def test_every_screen_has_a_prompt_in_every_language_and_pads_stay_secret(lang: str):
    """Whatever the catalogue holds (its own words, or the Japanese ones while it is not built)."""
    layouts = _layouts(5, seed=3)
    for label, screen in STATES:
        parts = spoken_parts(screen, lang)
        assert parts and all(t.strip() for t, _ in parts), (lang, label)
        if is_pad_screen(screen):
            texts = {spoken_text(Screen(screen.id, {**dict(screen.params), "layout": lay}), lang)[0]
                     for lay in layouts}
            assert len(texts) == 1, (lang, label)
            assert not re.search(r"\d\s*\d", texts.pop()), (lang, label)
