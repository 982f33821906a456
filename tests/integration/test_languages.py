"""Issue #11, done when: a PIN visit and a face visit in English and in Vietnamese produce
screens and spoken prompts (WAV files on the timeline) in that language, and the next card
is in Japanese again. The real daemon under hw-sim; the patient picks the language with key 11
on the method choice, as on the device."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest

from mynad.ui.i18n import LANG_CODES
from mynasim.rig import SimRig
from tests.integration.conftest import running_rig

pytestmark = [pytest.mark.pcscd, pytest.mark.models]

KANA = re.compile(r"[\u3040-\u30ff]")  # hiragana and katakana: Japanese sentences, not names in kanji


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> SimRig:
    yield from running_rig(tmp_path_factory.mktemp("languages"), voice={"backend": "sim"})


def pick_language(rig: SimRig, mark: int, lang: str) -> list[str]:
    rig.wait_screen("method_choice", timeout=30, after=mark)
    rig.press(11)
    rig.wait_screen("language", timeout=10, after=mark)
    m = rig.mark()
    rig.press(LANG_CODES.index(lang) + 1)
    e = rig.wait_screen("method_choice", timeout=10, after=m)
    assert not KANA.search(e.data["text"]), e.data["text"]
    return list(e.data["params"]["choices"])


def consents_to_done(rig: SimRig, mark: int) -> None:
    rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in ("consent", "consent_carryover"),
                          timeout=60, after=mark, what="the consents")
    while True:
        m = rig.mark()
        rig.press(12)
        e = rig.timeline.wait_for(lambda x: x.source == "display" and x.data.get("screen") in ("consent", "consent_carryover", "done"),
                                  timeout=10, after=m, what="next consent or done")
        if e.data["screen"] == "done":
            return


def check_language(rig: SimRig, mark: int, lang: str) -> None:
    """Every screen from the language choice to done is in ``lang``, and so is every prompt."""
    rig.timeline.wait_for(lambda x: x.source == "voice" and x.kind == "prompt"
                          and x.data.get("screen") in ("done", "remove_card"), timeout=60, after=mark,
                          what="the done or take-your-card prompt")
    start = [i for i, e in enumerate(rig.timeline.entries()) if i >= mark and e.source == "display"
             and e.data.get("screen") == "language"][0]
    shown = [e for e in rig.timeline.entries()[start + 1:] if e.source == "display"]
    done = next(i for i, e in enumerate(shown) if e.data.get("screen") == "done")
    for e in shown[:done + 1]:
        assert not KANA.search(e.data.get("text", "").replace("マイナ", "")), (e.data["screen"], e.data["text"])
    # The sim bus orders entries by arrival, and a prompt overtaken by the next screen is skipped
    # or cut, so go by the daemon's own order (the WAV files are numbered as played): from the first
    # prompt in the chosen language to the done screen, every prompt is in that language.
    def number(e) -> int:
        return int(Path(e.data["file"]).name.split("-")[0])

    prompts = sorted((e for e in rig.timeline.entries()[mark:] if e.source == "voice" and e.kind == "prompt"),
                     key=number)
    first = next(i for i, e in enumerate(prompts) if e.data["lang"] == lang)
    spoken = prompts[first:]  # the card is still in: the visit's language holds
    assert {"done", "remove_card"} & {e.data["screen"] for e in spoken}, [e.data["screen"] for e in spoken]
    for e in spoken:
        assert e.data["lang"] == lang, e.data
        with wave.open(str(Path(e.data["file"]))) as w:
            assert w.getnframes() > w.getframerate() // 4  # a real utterance, not an empty file


def back_in_japanese(rig: SimRig) -> None:
    m = rig.mark()
    rig.remove_card()
    rig.show_face(None, behaviour="none")
    idle = rig.wait_screen("idle", after=m, timeout=15)
    assert "マイナ保険証" in idle.data["text"]
    prompt = rig.timeline.wait_for(lambda x: x.source == "voice" and x.kind == "prompt"
                                   and x.data.get("screen") == "idle", timeout=30, after=m, what="the idle prompt")
    assert prompt.data["lang"] == "ja"


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_pin_visit_in_the_patients_language(rig: SimRig, lang: str):
    mark = rig.mark()
    rig.place_card("taro")
    choices = pick_language(rig, mark, lang)
    rig.press(choices.index("pin") + 1)
    rig.wait_screen("pin_entry", after=mark)
    rig.type_digits(rig.profiles["taro"].pin)
    consents_to_done(rig, mark)
    assert rig.wait_host("visit.result", after=mark).data["method"] == "pin"
    check_language(rig, mark, lang)
    back_in_japanese(rig)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_face_visit_in_the_patients_language(rig: SimRig, lang: str):
    card = rig.photo_of("taro")
    live = card.with_name(card.name.replace("__1.", "__2."))
    mark = rig.mark()
    rig.show_face(live, behaviour="live")  # a person who reads the screen, in their language
    rig.place_card("taro")
    choices = pick_language(rig, mark, lang)
    assert "face" in choices, choices
    rig.press(choices.index("face") + 1)
    consents_to_done(rig, mark)
    assert rig.wait_host("visit.result", after=mark).data["method"] == "face"
    check_language(rig, mark, lang)
    back_in_japanese(rig)
