"""The face engine: YuNet detection + SFace embedding through onnxruntime, no OpenCV.

One :class:`FaceEngine` holds one onnxruntime session per model for the life of the
daemon. Models are verified against the manifest's sha256 at load; the verified bytes
are what onnxruntime loads.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from myna_models.align import SIZE as CROP_SIZE
from myna_models.align import align_face
from myna_models.calibration_file import read_calibration
from myna_models.detect import MAX_SIDE, YuNet, _as_bgr
from myna_models.errors import FaceError, ModelError, NoFace, PhotoError
from myna_models.graphs import blocked_layout_available, detector_graph, recognizer_graph
from myna_models.manifest import Manifest, load_manifest, read_verified

__all__ = ["Face", "FaceEngine", "load_image", "decode_card_photo", "default_models_dir",
           "MAX_CARD_PHOTO_BYTES", "MAX_CARD_PHOTO_PIXELS"]

MAX_CARD_PHOTO_BYTES = 1 << 20          # the chip photo is a few kB
MAX_CARD_PHOTO_PIXELS = 1_000_000       # checked from the header, before any decoding
SYSTEM_MODELS_DIR = Path("/var/lib/myna-reader/models")
# Stills (the card photo, face-verify's images, calibration photos) are detected on the
# black 640x640 canvas the detector file ships with, not at their own small size: on the
# calibration set the 180x240 card form then separates genuine from impostor pairs a
# little better (EER 0.03 % against 0.26 % at 192x256), and a still is detected once per
# card, so its cost does not matter. Camera frames run at their own size (speed matters
# there, and a 640-wide frame gives the same landmarks either way: bench --explore).
STILL_CANVAS = 640


def default_models_dir() -> Path:
    """$MYNA_MODELS_DIR, else the source tree's assets/models if present, else /var/lib/myna-reader/models."""
    env = os.environ.get("MYNA_MODELS_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2] / "assets" / "models"
    if repo.is_dir():
        return repo
    return SYSTEM_MODELS_DIR


@dataclass(frozen=True, eq=False)
class Face:
    box: tuple[float, float, float, float]   # x, y, w, h in frame pixels
    landmarks: np.ndarray                     # (5, 2) float32: right eye, left eye, nose, right mouth, left mouth
    score: float

    @property
    def area(self) -> float:
        return max(self.box[2], 0.0) * max(self.box[3], 0.0)

    def as_row(self) -> np.ndarray:
        """OpenCV FaceDetectorYN's 15-float row (box, landmarks, score)."""
        return np.concatenate([np.asarray(self.box, np.float32), self.landmarks.reshape(-1),
                               np.asarray([self.score], np.float32)])


class FaceEngine:
    def __init__(self, models_dir: Path | str, manifest: Path | str | None = None, threads: int = 2,
                 *, recognizer: str | None = None, calibration: Path | str | None = None,
                 blocked_layout: bool | None = None) -> None:
        """``calibration``: the reader's ``<state_dir>/face-calibration.toml``; its threshold is used when the
        file exists and was made for this recognizer's sha256, else the manifest's default (calibration_file.py
        says why it lives outside the package). ``threshold_source`` tells which one is in use."""
        import onnxruntime as ort

        self._ort = ort
        self.models_dir = Path(models_dir)
        self.manifest: Manifest = load_manifest(manifest)
        self.threads = usable_threads(threads)
        # onnxruntime's blocked (NCHWc) layout where this CPU has it; False forces plain NCHW, as on ARM
        self.blocked_layout = blocked_layout_available() if blocked_layout is None else bool(blocked_layout)

        det = self.manifest.by_role("detector")[0]
        rec = self._pick_recognizer(recognizer)
        self.detector_file = det.file
        self.recognizer = rec.file
        self.threshold, self.threshold_calibrated = self.manifest.threshold_for(rec.file)
        self.threshold_source = f"manifest {self.manifest.path}"
        if calibration is not None:
            cal = read_calibration(calibration, rec.file, rec.sha256, self.threshold)
            if cal is not None:
                self.threshold, self.threshold_calibrated = cal.threshold, True
                self.threshold_source = f"calibration {cal.path} ({cal.rule}, {cal.date})"
        self.hashes = {det.file: det.sha256, rec.file: rec.sha256}

        # hash first, then derive the graphs we run from exactly those bytes (graphs.py says why)
        det_session = self._session(det.file, detector_graph(read_verified(self.models_dir, det)))
        self._rec = self._session(rec.file, recognizer_graph(read_verified(self.models_dir, rec), self.blocked_layout))
        try:
            self._yunet = YuNet(det_session)
        except ValueError as e:
            raise ModelError(f"model file {self.models_dir / det.file} is not a usable detector: {e}") from None
        inp, out = self._rec.get_inputs()[0], self._rec.get_outputs()[0]
        if list(inp.shape[1:]) != [3, CROP_SIZE, CROP_SIZE] or out.shape[-1] != 128:
            raise ModelError(f"model file {self.models_dir / rec.file} is not a usable recognizer "
                             f"(input {inp.shape}, output {out.shape})")
        self._rec_in, self._rec_out = inp.name, out.name

    # ------------------------------------------------------------ loading
    def _pick_recognizer(self, wanted: str | None):
        if wanted is not None:
            return self.manifest.entry(wanted)  # ModelError if unknown
        candidates = self.manifest.by_role("recognizer")
        for e in candidates:
            if (self.models_dir / e.file).exists():
                return e
        names = ", ".join(e.file for e in candidates)
        raise ModelError(f"no face recognizer model in {self.models_dir} (expected one of: {names})")

    def _session(self, name: str, data: bytes):
        ort = self._ort
        try:
            return ort.InferenceSession(data, sess_options=session_options(self.threads, self.blocked_layout),
                                        providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"model file {self.models_dir / name} does not load in onnxruntime: {e}") from None

    # ------------------------------------------------------------ detection
    def detect(self, bgr: np.ndarray, max_side: int = MAX_SIDE) -> list[Face]:
        """Faces in a camera frame, best score first."""
        return _faces(*self._yunet.detect(bgr, max_side=max_side))

    def detect_still(self, bgr: np.ndarray) -> list[Face]:
        """Faces in a photo (card photo, an image file), best score first."""
        return _faces(*self._yunet.detect(bgr, canvas=STILL_CANVAS))

    def align(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        """SFace's 112x112x3 uint8 BGR crop."""
        try:
            return align_face(_as_bgr(bgr), face.landmarks)
        except (ValueError, np.linalg.LinAlgError) as e:
            raise NoFace(f"face landmarks unusable for alignment ({e})") from None

    # ------------------------------------------------------------ embedding
    def embed_aligned(self, crop_bgr: np.ndarray) -> np.ndarray:
        """(128,) float32, L2-normalised, from a 112x112 BGR crop."""
        blob = np.ascontiguousarray(crop_bgr[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)  # RGB, NCHW
        v = self._rec.run([self._rec_out], {self._rec_in: blob})[0][0].astype(np.float32)
        n = float(np.linalg.norm(v))
        if not np.isfinite(n) or n == 0.0:
            raise NoFace("the recognizer produced no usable embedding for this face")
        return v / n

    def embed_face(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        return self.embed_aligned(self.align(bgr, face))

    def embed_image(self, bgr: np.ndarray) -> np.ndarray:
        """Embedding of the largest face; NoFace if there is none."""
        bgr = _as_bgr(bgr)
        faces = self.detect_still(bgr)
        if not faces:
            raise NoFace("no face found in the image")
        return self.embed_face(bgr, max(faces, key=lambda f: f.area))

    def embed_card_photo(self, jp2: bytes) -> np.ndarray:
        """Embedding of the card chip's JPEG 2000 photo (bounded decode; PhotoError / NoFace)."""
        bgr = decode_card_photo(jp2)
        try:
            return self.embed_image(bgr)
        except NoFace:
            raise NoFace("no face found in the card photo") from None

    @staticmethod
    def score(a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity."""
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if a.shape != b.shape:
            raise ValueError(f"embeddings of different sizes: {a.shape} vs {b.shape}")
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na == 0 or nb == 0:
            return 0.0
        return float(np.dot(a, b) / (na * nb))

    def matches(self, score: float) -> bool:
        return score >= self.threshold


def usable_threads(wanted: int) -> int:
    """Compute threads to give onnxruntime: as asked, but never more than the CPUs this process may use.

    More compute threads than cores only adds context switches (measured: 4 threads on
    2 cores is slower than 2), and a config written for a 4-core Pi must not hurt a 2-core one.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(int(wanted), cpus))


def session_options(threads: int, blocked_layout: bool = True):
    """onnxruntime options for both models (bench/face_bench.py measures the same ones).

    ``blocked_layout=False`` turns off onnxruntime's NCHWc layout transformer, which x86 CPUs
    with AVX2 would otherwise use: the graph then runs in plain NCHW, as on ARM, where that
    transformer does not exist (graphs.blocked_layout_available).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = usable_threads(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # Worker threads sleep between operators instead of spinning. Spinning saved ~10 % per frame
    # at 2 threads on an idle machine (21 -> 19 ms), but when other programs want the same cores
    # every operator waits for a descheduled spinner: measured on a busy 2-core machine (load 4-5),
    # 2 threads took 88 ms per frame spinning and 41 ms without (OpenCV: 67 ms). The reader's
    # cores are shared with capture and the display, so a bounded worst case wins over 10 %.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # fold SFace's blockwise DequantizeLinear weights once at load instead of on every run
    # (48 -> 30 ms, same output; MODELS.md); a graph without them is not affected
    so.add_session_config_entry("session.disable_quant_qdq", "1")
    # no second, pre-packed copy of the weights: measured the same speed, ~20 MB less at peak
    so.add_session_config_entry("session.disable_prepacking", "1")
    # No memory arena: an arena keeps the largest buffers each session ever needed (the card
    # photo's 640x640 still canvas, every frame size, the OCR lines) for the daemon's life and
    # grew the daemon by ~50 MB per model; without it the buffers go back to the allocator
    # (mynad.memory trims it after each visit). Per-frame time measured the same (bench/daemon_rss.py).
    so.enable_cpu_mem_arena = False
    if not blocked_layout:
        so.add_session_config_entry("optimization.disable_specified_optimizers", "NchwcTransformer")
    return so


def _faces(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray) -> list[Face]:
    faces = []
    for b, k, s in zip(boxes, kps, scores):
        lm = np.array(k, dtype=np.float32)
        lm.setflags(write=False)
        x, y, w, h = (float(v) for v in b)  # YuNet boxes: x, y, w, h
        faces.append(Face((x, y, w, h), lm, float(s)))
    return faces


# ---------------------------------------------------------------- images

def _pil_to_bgr(img: Image.Image) -> np.ndarray:
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def decode_card_photo(jp2: bytes) -> np.ndarray:
    """The chip photo as BGR uint8. Size limits are checked from the header before anything is decoded."""
    if not isinstance(jp2, (bytes, bytearray, memoryview)):
        raise PhotoError(f"card photo must be bytes, not {type(jp2).__name__}")
    n = len(jp2)
    if n == 0:
        raise PhotoError("card photo is empty")
    if n > MAX_CARD_PHOTO_BYTES:
        raise PhotoError(f"card photo is too large ({n} bytes, limit {MAX_CARD_PHOTO_BYTES})")
    try:
        img = Image.open(io.BytesIO(bytes(jp2)), formats=["JPEG2000"])
    except Image.DecompressionBombError as e:
        raise PhotoError(f"card photo rejected as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise PhotoError("card photo is not a JPEG 2000 image") from None
    with img:
        w, h = img.size
        if w <= 0 or h <= 0 or w * h > MAX_CARD_PHOTO_PIXELS:
            raise PhotoError(f"card photo is too large ({w}x{h} pixels, limit {MAX_CARD_PHOTO_PIXELS})")
        try:
            img.load()
            return _pil_to_bgr(img)
        except Exception as e:  # decoder errors come in many types (OSError, ValueError, MemoryError, ...)
            raise PhotoError(f"card photo cannot be decoded ({type(e).__name__})") from None


def load_image(path) -> np.ndarray:
    """Any image file -> BGR uint8 (EXIF orientation applied). FaceError if unreadable."""
    try:
        with Image.open(path) as img:
            return _pil_to_bgr(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError:
        raise FaceError(f"{path}: image is too large") from None
    except FileNotFoundError:
        raise FaceError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise FaceError(f"{path}: not an image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise FaceError(f"{path}: image cannot be read ({e})") from None
