"""The speaker: spoken prompts and chimes through the Pi's audio output, or a WAV per clip.

Both players offer ``say(clip, screen=, lang=, text=, cut=)``, ``chime(pattern)``,
``stop()`` and ``close()`` (the ``Voice`` interface of ``myna_drivers.devices``,
which chooses between them from ``[voice] backend``). They receive audio, never
text to speak: turning words into samples is the daemon's business
(``mynad.voice``); this module only plays.

* real (``alsa``): each clip is piped to ``aplay`` (alsa-utils) as raw S16_LE mono
  on the configured ALSA PCM. One process per clip, so cutting a prompt short is
  killing that process: the sound stops within aplay's buffer (~0.1 s), and a
  wedged device can never block the next prompt for longer than one clip.
  pyalsaaudio would save the fork (~10 ms on a Pi 4) but needs a C build against
  libasound2-dev on every install; aplay is already a Debian binary.
* sim: each clip becomes ``<out_dir>/NNNN-<screen>.wav`` (chimes:
  ``NNNN-chime-<pattern>.wav``) and a sim bus message ``{"dev":"voice",
  "kind":"prompt"|"chime"|"cut", ...}`` for hw-sim's timeline. The sim player
  "plays" for the clip's real duration, so cutting, queueing and repeating behave
  exactly as on the reader.

One worker thread per player plays a queue of clips, so nothing here blocks the
caller (the daemon's event loop). Rules, the same for both players:

* ``say(cut=True)`` (a new screen): the prompt playing is cut, prompts queued
  are dropped, the new prompt plays at once (after a chime that is playing).
* ``say(cut=False)`` (the same screen with new words, e.g. a face hint): the
  prompt playing finishes; queued prompts are replaced by this one.
* ``chime(pattern)``: plays at once; a prompt it cuts is played again from its
  start after the chime, so a chime and its screen's prompt come in that order
  whatever order the daemon issued them in.

Chimes are the buzzer patterns of ``myna_drivers.indicators.PATTERNS`` rendered
as tones: the same pitches and rhythm, so "card detected", "ok", "error" and
"remove your card" keep their meaning on the speaker.
"""

from __future__ import annotations

import abc
import logging
import math
import shutil
import subprocess
import threading
import wave
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from myna_drivers.numbered_files import NumberedFiles

log = logging.getLogger("myna.voice")

CHIME_RATE = 22050
FADE_S = 0.004  # raised-cosine edges: a tone switched on mid-cycle clicks
VOLUME_RANGE_DB = 40.0  # volume 1 is 40 dB below volume 100
APLAY_OPEN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Clip:
    """Mono 16-bit samples at ``rate`` Hz: what a player plays."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.rate)


def volume_gain(volume: int) -> float:
    """Amplitude factor for ``volume`` 0..100.

    Loudness is heard logarithmically, so the scale is in decibels: 100 is full
    scale, each step down is 0.4 dB, 1 is -40 dB, 0 is silence. A linear scale
    would put every usable setting between 70 and 100.
    """
    v = max(0, min(100, int(volume)))
    if v == 0:
        return 0.0
    return float(10 ** ((v - 100) * VOLUME_RANGE_DB / 100 / 20))


def scaled(samples: np.ndarray, gain: float) -> np.ndarray:
    if gain >= 1.0:
        return samples.astype(np.int16, copy=False)
    return np.clip(np.round(samples.astype(np.float32) * gain), -32768, 32767).astype(np.int16)


def tone_clip(pattern: str, rate: int = CHIME_RATE) -> Clip:
    """The buzzer ``pattern`` (steps of (Hz or 0, seconds)) as a sine-tone clip."""
    from myna_drivers.indicators import PATTERNS

    steps = PATTERNS.get(pattern)
    if steps is None:
        raise KeyError(f"unknown chime pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    parts = []
    fade = max(1, int(FADE_S * rate))
    for freq, seconds in steps:
        n = max(1, int(round(seconds * rate)))
        if freq <= 0:
            parts.append(np.zeros(n, dtype=np.float32))
            continue
        t = np.arange(n, dtype=np.float32) / rate
        wave_ = np.sin(2 * math.pi * freq * t).astype(np.float32)
        edge = min(fade, n // 2)
        if edge > 0:
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, edge, dtype=np.float32))
            wave_[:edge] *= ramp
            wave_[n - edge:] *= ramp[::-1]
        parts.append(wave_ * 0.5)  # -6 dBFS: a chime must not be louder than speech
    samples = np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    return Clip(np.round(samples * 32767).astype(np.int16), rate)


def write_wav(path: Path, clip: Clip) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(clip.rate))
        w.writeframes(np.ascontiguousarray(clip.samples, dtype="<i2").tobytes())


def read_wav(path: Path) -> Clip:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: not 16-bit mono")
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return Clip(np.frombuffer(data, dtype="<i2").astype(np.int16), rate)


@dataclass
class _Item:
    kind: str  # "prompt" | "chime"
    clip: Clip
    label: dict[str, Any] = field(default_factory=dict)


class _Player(abc.ABC):
    """The queue and worker thread both players share; subclasses only ``_play`` one clip."""

    def __init__(self, volume: int, name: str) -> None:
        self.gain = volume_gain(volume)
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._playing: _Item | None = None
        self._cut = threading.Event()  # set: the clip playing now must stop
        self._stop = False
        self._chimes: dict[str, Clip] = {}
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # -- the interface

    def say(self, clip: Clip, *, screen: str = "", lang: str = "", text: str = "", cut: bool = True) -> None:
        item = _Item("prompt", clip, {"screen": screen, "lang": lang, "text": text})
        with self._cond:
            if cut:
                self._cut_prompt()
            else:
                self._queue = deque(i for i in self._queue if i.kind != "prompt")
            self._queue.append(item)
            self._cond.notify()

    def cut_prompt(self) -> None:
        """Stop the prompt playing and drop the prompts waiting; chimes play on (a new screen's
        chime is often issued just before its prompt is ready)."""
        with self._cond:
            self._cut_prompt()

    def _cut_prompt(self) -> None:
        self._queue = deque(i for i in self._queue if i.kind != "prompt")
        if self._playing is not None and self._playing.kind == "prompt":
            self._cut.set()

    def chime(self, pattern: str) -> None:
        clip = self._chimes.get(pattern)
        if clip is None:
            try:
                clip = self._chimes[pattern] = tone_clip(pattern)
            except KeyError as e:
                log.warning("%s", e.args[0])
                return
        item = _Item("chime", clip, {"pattern": pattern})
        with self._cond:
            playing = self._playing
            if playing is not None:
                self._cut.set()
                if playing.kind == "prompt":
                    self._queue.appendleft(playing)  # heard again, whole, after the chime
            self._queue.appendleft(item)
            self._cond.notify()

    def stop(self) -> None:
        """Silence now: cut what plays, drop what waits."""
        with self._cond:
            self._queue.clear()
            if self._playing is not None:
                self._cut.set()

    def busy(self) -> bool:
        with self._cond:
            return self._playing is not None or bool(self._queue)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cut.set()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    # -- the worker

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item = self._queue.popleft()
                self._playing = item
                self._cut.clear()
            try:
                self._play(item, scaled(item.clip.samples, self.gain))
            except Exception:  # a failing speaker must not end the voice: the next clip tries again
                log.exception("playing a %s failed", item.kind)
            finally:
                with self._cond:
                    self._playing = None
                    self._cond.notify_all()

    @abc.abstractmethod
    def _play(self, item: _Item, samples: np.ndarray) -> None:
        """Play (or record) one clip; return early when ``self._cut`` is set."""


class AlsaVoice(_Player):
    """Clips through ``aplay`` on an ALSA PCM (``device``, e.g. "default", "plughw:CARD=Headphones")."""

    def __init__(self, device: str = "default", volume: int = 70, *, aplay: str | None = None,
                 check: bool = True) -> None:
        super().__init__(volume, "voice-alsa")
        self.device = device or "default"
        self.aplay = aplay or shutil.which("aplay") or ""
        if not self.aplay:
            raise OSError("aplay is not installed (Debian package alsa-utils)")
        self._proc: subprocess.Popen | None = None
        self._warned = False
        if check:
            self._check()
        self._start()

    def _command(self, rate: int) -> list[str]:
        return [self.aplay, "-q", "-D", self.device, "-t", "raw", "-f", "S16_LE", "-c", "1", "-r", str(int(rate))]

    def _check(self) -> None:
        """Play 20 ms of silence now, so a wrong device name fails the start, in one sentence."""
        silence = np.zeros(CHIME_RATE // 50, dtype="<i2").tobytes()
        try:
            r = subprocess.run(self._command(CHIME_RATE), input=silence, capture_output=True,
                               timeout=APLAY_OPEN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise OSError(f"ALSA device {self.device!r} did not accept sound within "
                          f"{APLAY_OPEN_TIMEOUT_S:g} s (another program holding it?)") from None
        if r.returncode != 0:
            why = (r.stderr.decode(errors="replace").strip().splitlines() or ["no reason given"])[-1]
            raise OSError(f"ALSA device {self.device!r} cannot play sound: {why} "
                          f"(list the devices with `aplay -L`)")

    def _play(self, item: _Item, samples: np.ndarray) -> None:
        proc = subprocess.Popen(self._command(item.clip.rate), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._proc = proc
        data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        chunk = 4096 * 2
        try:
            assert proc.stdin is not None
            for i in range(0, len(data), chunk):
                if self._cut.is_set():
                    break
                proc.stdin.write(data[i:i + chunk])
            proc.stdin.close()
            while proc.poll() is None:
                if self._cut.wait(0.02):
                    break
        except (BrokenPipeError, OSError):
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._proc = None
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            if proc.returncode not in (0, -9) and not self._cut.is_set() and not self._warned:
                self._warned = True  # once: an unplugged speaker would otherwise fill the journal
                log.warning("aplay on %s failed (%s): %s", self.device, proc.returncode, err or "no reason")


class SimVoice(_Player):
    """A WAV per clip in ``out_dir``, announced on the sim bus; plays in real time, silently."""

    def __init__(self, out_dir: Path, bus_path: str = "", volume: int = 70, keep_files: int = 0) -> None:
        super().__init__(volume, "voice-sim")
        self.out_dir = Path(out_dir)
        self.files = NumberedFiles(self.out_dir, ".wav", keep=keep_files)
        self.bus = None
        if bus_path:
            from myna_drivers.simbus import SimBus

            self.bus = SimBus.shared(bus_path)
        # for tests and the rig: the files still kept, in order
        self.written: deque[Path] = deque(maxlen=keep_files or None)
        self._start()

    def _play(self, item: _Item, samples: np.ndarray) -> None:
        what = item.label.get("screen") if item.kind == "prompt" else f"chime-{item.label.get('pattern')}"
        path = self.files.next(str(what or item.kind))
        clip = Clip(samples, item.clip.rate)
        write_wav(path, clip)
        self.written.append(path)
        seconds = round(clip.seconds, 3)
        if self.bus is not None:
            self.bus.send("voice", kind=item.kind, file=str(path), duration=seconds, **item.label)
        if self._cut.wait(clip.seconds):
            if self.bus is not None:
                self.bus.send("voice", kind="cut", file=str(path), **item.label)
