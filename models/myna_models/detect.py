"""YuNet (face_detection_yunet_2023mar.onnx) through onnxruntime, decoded in numpy.

The session runs :func:`myna_models.graphs.detector_graph`'s form of the model: a uint8
BGR frame of any size whose sides are multiples of 32. A frame is padded with black at
the right and bottom up to the next multiple (a 640x480 camera frame needs none), like
OpenCV's ``FaceDetectorYN``; larger stills are first downscaled to ``max_side`` (never
upscaled: see MODELS.md). ``canvas`` pads a small image further, onto a black square of
that side (the 640x640 input the model file ships with). Decoded coordinates are mapped
back to the caller's frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from myna_models.graphs import DETECTOR_INPUT, STRIDE_ALIGN

MAX_SIDE = 640
STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
TOP_K = 50


class YuNet:
    """One detector session. Keeps no per-frame state, so threads may share it."""

    def __init__(self, session) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        if inp.name != DETECTOR_INPUT or len(inp.shape) != 4 or inp.shape[3] != 3:
            raise ValueError(f"detector input is {inp.name} {inp.shape}, expected {DETECTOR_INPUT} [1, h, w, 3]")
        self.output_names = [f"{kind}_{s}" for s in STRIDES for kind in ("cls", "obj", "bbox", "kps")]
        self._grids: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _grid(self, stride: int, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Anchor columns and rows, row-major, for one stride of one input size (cached: sizes repeat)."""
        key = (stride, cols, rows)
        g = self._grids.get(key)
        if g is None:
            r, c = np.divmod(np.arange(rows * cols, dtype=np.float32), cols)
            g = self._grids[key] = (c, r)
        return g

    def detect(self, bgr: np.ndarray, max_side: int = MAX_SIDE, canvas: int = 0, score_threshold: float = SCORE_THRESHOLD,
               nms_iou: float = NMS_IOU, top_k: int = TOP_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (boxes (N,4) x,y,w,h; landmarks (N,5,2); scores (N,)) in frame pixels, best score first."""
        bgr = _as_bgr(bgr)
        h, w = bgr.shape[:2]
        scale = min(1.0, int(max_side) / max(h, w))
        if scale < 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            small = np.asarray(Image.fromarray(bgr).resize((nw, nh), Image.Resampling.BILINEAR))
            sx, sy = nw / w, nh / h
        else:
            small, sx, sy = bgr, 1.0, 1.0
        sh, sw = small.shape[:2]
        ph, pw = _stride_up(max(sh, int(canvas))), _stride_up(max(sw, int(canvas)))
        if (ph, pw) != (sh, sw):
            padded = np.zeros((ph, pw, 3), np.uint8)
            padded[:sh, :sw] = small
            small = padded
        outs = self.session.run(self.output_names, {DETECTOR_INPUT: small[None]})

        boxes, kps, scores = [], [], []
        for i, s in enumerate(STRIDES):
            cls, obj, bbox, kp = (o[0] for o in outs[4 * i:4 * i + 4])
            score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
            keep = np.nonzero(score >= score_threshold)[0]
            if keep.size == 0:
                continue
            cols, rows = self._grid(s, pw // s, ph // s)
            c, r = cols[keep], rows[keep]
            b = bbox[keep]
            cx, cy = (c + b[:, 0]) * s, (r + b[:, 1]) * s
            bw, bh = np.exp(b[:, 2]) * s, np.exp(b[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1))
            k = kp[keep].reshape(-1, 5, 2)
            kps.append(np.stack([(c[:, None] + k[:, :, 0]) * s, (r[:, None] + k[:, :, 1]) * s], axis=2))
            scores.append(score[keep])
        if not scores:
            return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros((0,), np.float32)
        boxes_a = np.concatenate(boxes).astype(np.float32)
        kps_a = np.concatenate(kps).astype(np.float32)
        scores_a = np.concatenate(scores).astype(np.float32)
        keep = nms(boxes_a, scores_a, nms_iou)[:top_k]
        boxes_a, kps_a, scores_a = boxes_a[keep], kps_a[keep], scores_a[keep]
        if scale < 1.0:
            boxes_a[:, [0, 2]] /= sx
            boxes_a[:, [1, 3]] /= sy
            kps_a[:, :, 0] /= sx
            kps_a[:, :, 1] /= sy
        return boxes_a, kps_a, scores_a


def _stride_up(n: int) -> int:
    """n rounded up to the detector's largest stride."""
    return -(-n // STRIDE_ALIGN) * STRIDE_ALIGN


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression on x,y,w,h boxes; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    area = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    kept = []
    while order.size:
        i = order[0]
        kept.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(kept, dtype=np.int64)


def _as_bgr(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got shape {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError("empty image")
    return np.ascontiguousarray(img)
