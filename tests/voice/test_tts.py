"""The offline speech engines, for real: Japanese through Open JTalk, others through espeak-ng."""

from __future__ import annotations

import numpy as np
import pytest

from myna_drivers.voice import Clip
from mynad.voice.cache import PromptCache
from mynad.voice.tts import ESPEAK_VOICES, Speech, SpeechError, joined, parse_wav_stream


def _voiced(clip: Clip) -> float:
    """Seconds of the clip louder than -30 dBFS in 20 ms windows: speech, not silence or a click."""
    w = clip.rate // 50
    x = clip.samples[: len(clip.samples) // w * w].astype(np.float32).reshape(-1, w)
    rms = np.sqrt((x ** 2).mean(axis=1))
    return float((rms > 32767 * 10 ** (-30 / 20)).sum() * 0.02)


def test_japanese_synthesis_produces_speech(tmp_path):
    speech = Speech(PromptCache(tmp_path))
    clip = speech.clip("カードを置いてください。", "ja")
    assert clip.rate == 48000 and clip.samples.dtype == np.int16
    assert 0.8 < clip.seconds < 5.0
    assert _voiced(clip) > 0.5
    assert speech.synthesized == 1
    again = speech.clip("カードを置いてください。", "ja")  # from the cache, not synthesized again
    assert speech.synthesized == 1 and speech.hits == 1
    assert np.array_equal(again.samples, clip.samples)


@pytest.mark.parametrize("lang", sorted(ESPEAK_VOICES))
def test_other_languages_speak_with_espeak_ng(lang, tmp_path):
    text = {"en": "Please place your card.", "zh": "请放置您的卡。", "ko": "카드를 올려 주세요.",
            "vi": "Vui lòng đặt thẻ của bạn.", "pt": "Coloque o seu cartão, por favor."}[lang]
    clip = Speech(PromptCache(tmp_path)).clip(text, lang)
    assert clip.seconds > 0.5 and _voiced(clip) > 0.3


def test_no_voice_for_an_unknown_language_is_a_plain_error(tmp_path):
    with pytest.raises(SpeechError, match="no offline voice"):
        Speech(PromptCache(tmp_path)).clip("Mabuhay", "tl")  # prompts speak English for Tagalog


def test_a_damaged_cache_file_is_made_again(tmp_path):
    cache = PromptCache(tmp_path)
    speech = Speech(cache)
    speech.clip("はい。", "ja")
    path = cache.path(speech.engine("ja").id, "はい。")
    path.write_bytes(b"RIFF\x00garbage")
    assert speech.clip("はい。", "ja").seconds > 0.1
    assert speech.synthesized == 2


def test_cache_is_bounded(tmp_path):
    cache = PromptCache(tmp_path, max_files=3)
    clip = Clip(np.zeros(10, dtype=np.int16), 8000)
    for i in range(6):
        cache.put("e", str(i), clip)
    assert len(list(tmp_path.glob("*.wav"))) == 3


def test_wav_streams_with_unknown_length_are_read():
    body = np.arange(100, dtype="<i2").tobytes()
    header = (b"RIFF" + b"\xff\xff\xff\x7f" + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
              + (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + b"\xff\xff\xff\x7f")
    rate, x = parse_wav_stream(header + body)
    assert rate == 22050 and np.array_equal(x, np.arange(100))
    with pytest.raises(SpeechError):
        parse_wav_stream(b"not a wav at all, not at all, not at all, no")


def test_parts_in_several_voices_are_joined_at_the_highest_rate():
    a = Clip(np.ones(100, dtype=np.int16), 22050)
    b = Clip(np.ones(480, dtype=np.int16), 48000)
    c = joined([a, b], gap_s=0.0)
    assert c.rate == 48000 and len(c.samples) == round(100 * 48000 / 22050) + 480
