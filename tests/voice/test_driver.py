"""The speaker driver: the sim writes valid WAVs and reports them on the timeline; cutting,
chimes and volume; the ALSA player through aplay on ALSA's "null" device."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from myna_drivers.indicators import PATTERNS
from myna_drivers.voice import AlsaVoice, Clip, SimVoice, read_wav, tone_clip, volume_gain
from mynasim.bus import SimBusServer
from mynasim.timeline import Timeline


def _tone(seconds: float, rate: int = 16000, freq: float = 440.0) -> Clip:
    t = np.arange(int(seconds * rate)) / rate
    return Clip(np.round(np.sin(2 * np.pi * freq * t) * 20000).astype(np.int16), rate)


@pytest.fixture
def bus(tmp_path: Path):
    timeline = Timeline(tmp_path / "timeline.jsonl")
    server = SimBusServer(tmp_path / "bus.sock", timeline)
    yield server, timeline
    server.close()
    timeline.close()


def _connected(voice: SimVoice) -> None:
    assert voice.bus is not None and voice.bus.wait_connected(10.0)


def test_sim_writes_a_wav_and_a_timeline_entry(tmp_path: Path, bus):
    server, timeline = bus
    voice = SimVoice(tmp_path / "voice", str(tmp_path / "bus.sock"), volume=100)
    _connected(voice)
    try:
        voice.say(_tone(0.2), screen="reading", lang="ja", text="読み取っています。")
        e = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt", 10.0, what="a voice prompt")
        assert e.data["screen"] == "reading" and e.data["lang"] == "ja" and e.data["text"] == "読み取っています。"
        path = Path(e.data["file"])
        assert path.name == "0001-reading.wav" and path.parent == tmp_path / "voice"
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert w.getnframes() == 3200
        assert e.data["duration"] == pytest.approx(0.2, abs=1e-3)
    finally:
        voice.close()


def test_a_new_screen_cuts_the_prompt_and_a_chime_comes_before_its_prompt(tmp_path: Path, bus):
    server, timeline = bus
    voice = SimVoice(tmp_path / "voice", str(tmp_path / "bus.sock"))
    _connected(voice)
    try:
        voice.say(_tone(30.0), screen="idle", text="long")
        timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt", 10.0)
        voice.cut_prompt()  # what VoiceIO does when the next screen is shown
        voice.chime("error")
        voice.say(_tone(0.1), screen="card_error", text="short")
        cut = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "cut", 10.0, what="the cut")
        assert cut.data["screen"] == "idle"
        chime = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "chime", 10.0, what="the chime")
        assert chime.data["pattern"] == "error" and Path(chime.data["file"]).name.endswith("chime-error.wav")
        after = timeline.entries().index(chime) + 1
        nxt = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt", 10.0, after=after)
        assert nxt.data["screen"] == "card_error"
    finally:
        voice.close()


def test_a_chime_during_a_prompt_plays_the_prompt_again_after_it(tmp_path: Path, bus):
    server, timeline = bus
    voice = SimVoice(tmp_path / "voice", str(tmp_path / "bus.sock"))
    _connected(voice)
    try:
        voice.say(_tone(30.0), screen="remove_card", text="x")
        timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt", 10.0)
        voice.chime("remind")
        timeline.wait_for(lambda e: e.source == "voice" and e.kind == "chime", 10.0)
        again = timeline.wait_for(lambda e: e.source == "voice" and e.kind == "prompt"
                                  and Path(e.data["file"]).name.startswith("0003"), 10.0, what="the prompt again")
        assert again.data["screen"] == "remove_card"
    finally:
        voice.close()


def test_chimes_are_the_buzzer_patterns():
    for name, steps in PATTERNS.items():
        clip = tone_clip(name)
        assert clip.seconds == pytest.approx(sum(d for _, d in steps), abs=0.01)
        assert 0 < int(np.max(np.abs(clip.samples))) <= 32767 // 2 + 1
    with pytest.raises(KeyError):
        tone_clip("fanfare")


def test_volume_is_a_decibel_scale_and_reaches_the_samples(tmp_path: Path):
    assert volume_gain(100) == 1.0 and volume_gain(0) == 0.0
    assert volume_gain(1) == pytest.approx(0.01, rel=0.05)  # -40 dB
    assert volume_gain(50) == pytest.approx(0.1, rel=0.01)  # -20 dB
    peaks = {}
    for vol in (100, 50, 0):
        voice = SimVoice(tmp_path / f"v{vol}", "", volume=vol)
        try:
            voice.say(_tone(0.05), screen="idle")
            while voice.busy() or not voice.written:
                voice._thread.join(0.01)
            peaks[vol] = int(np.max(np.abs(read_wav(voice.written[0]).samples)))
        finally:
            voice.close()
    assert peaks[100] == 20000 and peaks[50] == 2000 and peaks[0] == 0


def need_aplay() -> None:
    """scripts/setup.sh installs alsa-utils: without aplay the setup is broken, which is a failure."""
    if shutil.which("aplay") is None:
        pytest.fail("aplay is missing: run scripts/setup.sh (Debian package alsa-utils)")


def test_alsa_player_plays_through_aplay_and_can_be_cut():
    need_aplay()
    voice = AlsaVoice("null", volume=70)  # ALSA's null PCM: a real aplay, no sound card needed
    try:
        voice.say(_tone(0.1), screen="idle")
        voice.say(_tone(60.0), screen="reading")
        while voice.busy() and voice._proc is None:
            voice._thread.join(0.01)
        voice.cut_prompt()
        voice.close()  # returns: the 60 s clip was cut, not played out
        assert not voice._thread.is_alive()
    finally:
        voice.close()


def test_a_wrong_alsa_device_fails_the_start_in_one_sentence():
    need_aplay()
    with pytest.raises(OSError, match="ALSA device 'no-such-device' cannot play sound"):
        AlsaVoice("no-such-device")


def test_devices_open_the_speaker_from_config(tmp_path: Path):
    from myna_drivers.devices import _voice

    display = SimpleNamespace(out_dir=tmp_path / "screens")
    off = SimpleNamespace(voice=SimpleNamespace(backend="sim", enabled=False, volume=70, device="", out_dir=None),
                          display=display)
    assert _voice(off, "") is None
    none = SimpleNamespace(voice=SimpleNamespace(backend="none", enabled=True, volume=70, device="", out_dir=None),
                           display=display)
    assert _voice(none, "") is None
    sim = SimpleNamespace(voice=SimpleNamespace(backend="sim", enabled=True, volume=70, device="", out_dir=None),
                          display=display)
    v = _voice(sim, "")
    assert v is not None
    try:
        assert isinstance(v, SimVoice) and v.out_dir == tmp_path / "voice"
    finally:
        v.close()
