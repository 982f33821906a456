"""The shell's voice: what is spoken when, the repeat key, and enable/volume from the config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from myna_drivers.voice import Clip
from mynad.config import ConfigError, parse_config
from mynad.core import events as ev
from mynad.shell.voiceio import VoiceIO
from mynad.ui.screens import Screen
from mynad.voice.prompts import REPEAT_KEY

LAYOUT = ("3", "7", "1", "9", "0", "2", "8", "5", "4", "取消", "6", "クリア")


class FakeSpeech:
    """Instant clips; remembers what it was asked to say."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def clips(self, parts):
        self.asked += list(parts)
        return Clip(np.zeros(160, dtype=np.int16), 16000)

    def engine(self, lang):
        return None


class FakeVoice:
    def __init__(self) -> None:
        self.said: list[dict] = []
        self.chimes: list[str] = []
        self.cuts = 0

    def say(self, clip, **label):
        self.said.append(label)

    def cut_prompt(self):
        self.cuts += 1

    def chime(self, pattern):
        self.chimes.append(pattern)


@pytest.fixture
def vio():
    voice, speech = FakeVoice(), FakeSpeech()
    io = VoiceIO(SimpleNamespace(), voice, speech=speech)
    yield io, voice, speech
    io._worker.shutdown(wait=True)


def _show(io: VoiceIO, screen: Screen):
    fut = io.say(screen)
    return fut.result(10) if fut is not None else None


def test_each_screen_is_spoken_and_a_new_one_cuts_the_last(vio):
    io, voice, _ = vio
    assert _show(io, Screen("idle", {"mode": "auto"})) is True
    assert _show(io, Screen("reading")) is True
    assert [s["screen"] for s in voice.said] == ["idle", "reading"]
    assert all(s["cut"] for s in voice.said) and voice.cuts == 2
    assert voice.said[1]["text"].startswith("読み取っています")


def test_redraws_with_the_same_words_are_not_spoken_again(vio):
    io, voice, _ = vio
    for entered in range(4):
        _show(io, Screen("pin_entry", {"layout": LAYOUT, "entered": entered, "tries_left": 3, "wrong": False,
                                       "proxy": False}))
    assert len(voice.said) == 1
    _show(io, Screen("pin_entry", {"layout": LAYOUT, "entered": 0, "tries_left": 2, "wrong": True,
                                   "proxy": False}))
    assert len(voice.said) == 2 and voice.said[1]["cut"] is False  # same screen, new words: after the last


def test_indicate_sounds_its_chime_and_other_actions_are_ignored(vio):
    io, voice, _ = vio
    io.observe(ev.Indicate(buzzer="error", led="on"))
    io.observe(ev.Indicate(led="off"))
    io.observe(ev.ReadCard())
    assert voice.chimes == ["error"] and voice.said == []


def test_repeat_key_says_the_prompt_again_but_never_on_the_pad(vio):
    io, voice, _ = vio
    assert not io.handle_key(REPEAT_KEY, pin_entry_active=False)  # nothing shown yet: the flow gets it
    _show(io, Screen("method_choice", {"choices": ("face", "pin")}))
    assert io.handle_key(REPEAT_KEY, pin_entry_active=False)
    io._worker.submit(lambda: None).result(10)
    assert [s["screen"] for s in voice.said] == ["method_choice", "method_choice"]
    assert not io.handle_key(1, pin_entry_active=False)  # other keys go to the flow
    _show(io, Screen("pin_entry", {"layout": LAYOUT, "entered": 0}))
    assert not io.handle_key(REPEAT_KEY, pin_entry_active=True)  # a digit on the pad
    assert not io.handle_key(REPEAT_KEY, pin_entry_active=False)  # still the pad screen


def test_without_a_speaker_nothing_is_taken_or_said():
    io = VoiceIO(SimpleNamespace(), None, speech=FakeSpeech())
    assert io.say(Screen("reading")) is None
    assert not io.handle_key(REPEAT_KEY, pin_entry_active=False)
    io.observe(ev.Indicate(buzzer="ok"))


def test_a_given_language_source_is_used(vio):
    io, voice, speech = vio
    io.lang_of = lambda: "en"
    _show(io, Screen("reading"))
    assert speech.asked  # English when the catalogue has it, else the Japanese prompt in the Japanese voice
    assert voice.said[0]["lang"] in ("en", "ja")


def test_voice_config_section(tmp_path: Path):
    cfg = parse_config({"voice": {"backend": "alsa", "volume": 35, "device": "plughw:CARD=Headphones"}})
    assert (cfg.voice.backend, cfg.voice.enabled, cfg.voice.volume) == ("alsa", True, 35)
    assert parse_config({}).voice.backend == "none"
    with pytest.raises(ConfigError, match=r"\[voice\] volume must be between 0 and 100"):
        parse_config({"voice": {"volume": 101}})
    with pytest.raises(ConfigError, match=r"\[voice\] backend must be one of none, alsa, sim"):
        parse_config({"voice": {"backend": "pulse"}})
    with pytest.raises(ConfigError, match="true or false"):
        parse_config({"voice": {"enabled": "yes"}})


def test_a_sim_speaker_is_refused_outside_the_simulator(tmp_path: Path):
    from myna_drivers.devices import DeviceError, open_devices

    cfg = parse_config({"voice": {"backend": "sim"}, "sim": {"bus": str(tmp_path / "bus.sock")}})
    with pytest.raises(DeviceError, match=r"\[voice\]"):
        open_devices(cfg, on_key=lambda pos: None, simulator=False)


def test_a_shown_screen_becomes_a_spoken_wav_on_the_timeline(tmp_path: Path):
    """The whole chain without the rig: Show -> prompt text -> Open JTalk -> sim speaker -> timeline."""
    from myna_drivers.voice import SimVoice, read_wav
    from mynad.voice.cache import PromptCache
    from mynad.voice.tts import Speech
    from mynasim.bus import SimBusServer
    from mynasim.timeline import Timeline

    timeline = Timeline()
    server = SimBusServer(tmp_path / "bus.sock", timeline)
    voice = SimVoice(tmp_path / "voice", str(tmp_path / "bus.sock"))
    io = VoiceIO(SimpleNamespace(), voice, speech=Speech(PromptCache(tmp_path / "cache")))
    try:
        assert voice.bus is not None and voice.bus.wait_connected(10.0)
        io.observe(ev.Show(Screen("reading")))
        io.observe(ev.Indicate(buzzer="key", led="on"))
        chime = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "chime", 30.0, what="the chime")
        e = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt", 30.0, what="the prompt")
        assert chime.data["pattern"] == "key"
        assert e.data["screen"] == "reading" and e.data["lang"] == "ja"
        assert e.data["text"] == "読み取っています。カードを動かさないでください。"
        clip = read_wav(Path(e.data["file"]))
        assert clip.rate == 48000 and clip.seconds > 1.5 and int(abs(clip.samples).max()) > 1000
    finally:
        io._worker.shutdown(wait=True)
        voice.close()
        server.close()


def test_the_language_follows_the_flows_set_display(vio):
    io, voice, speech = vio
    set_display = getattr(ev, "SetDisplay", None)
    assert set_display is not None
    io.observe(set_display(lang="vi"))
    assert io.visit_lang == "vi" and io.lang_of() == "vi"
    io.observe(set_display())  # the card removed: Japanese again
    assert io.lang_of() == "ja"
