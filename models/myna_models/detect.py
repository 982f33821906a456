"""YuNet (face_detection_yunet_2023mar.onnx) through onnxruntime, decoded in numpy.

The network has a static 1x3x640x640 input (BGR, raw 0-255, NCHW). The frame is
put top-left on a black 640x640 canvas, downscaled first if it is larger (never
upscaled: see MODELS.md), and the decoded coordinates are divided by the scale.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INPUT_SIZE = 640
STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
TOP_K = 50


def _grid(stride: int) -> tuple[np.ndarray, np.ndarray]:
    n = INPUT_SIZE // stride
    rows, cols = np.divmod(np.arange(n * n, dtype=np.float32), n)
    return cols, rows


class YuNet:
    """One detector session plus a preallocated input canvas. Not thread-safe (one canvas)."""

    def __init__(self, session) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        shape = session.get_inputs()[0].shape
        if list(shape[2:]) != [INPUT_SIZE, INPUT_SIZE]:
            raise ValueError(f"detector input is {shape}, expected [1, 3, {INPUT_SIZE}, {INPUT_SIZE}]")
        self.output_names = [f"{kind}_{s}" for s in STRIDES for kind in ("cls", "obj", "bbox", "kps")]
        self.canvas = np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
        self._used = (0, 0)  # h, w of the region written last time (the rest is still black)
        self.grids = {s: _grid(s) for s in STRIDES}

    def _fill(self, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        uh, uw = self._used
        # clear only what the previous frame wrote outside the new frame
        if uh > h:
            self.canvas[0, :, h:uh, :uw] = 0.0
        if uw > w:
            self.canvas[0, :, :min(uh, h), w:uw] = 0.0
        self.canvas[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        self._used = (h, w)

    def detect(self, bgr: np.ndarray, max_side: int = INPUT_SIZE, score_threshold: float = SCORE_THRESHOLD,
               nms_iou: float = NMS_IOU, top_k: int = TOP_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (boxes (N,4) x,y,w,h; landmarks (N,5,2); scores (N,)) in frame pixels, best score first."""
        bgr = _as_bgr(bgr)
        h, w = bgr.shape[:2]
        limit = min(int(max_side), INPUT_SIZE)
        scale = min(1.0, limit / max(h, w))
        if scale < 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            small = np.asarray(Image.fromarray(bgr).resize((nw, nh), Image.BILINEAR))
            sx, sy = nw / w, nh / h
        else:
            small, sx, sy = bgr, 1.0, 1.0
        self._fill(small)
        outs = self.session.run(self.output_names, {self.input_name: self.canvas})

        boxes, kps, scores = [], [], []
        for i, s in enumerate(STRIDES):
            cls, obj, bbox, kp = (o[0] for o in outs[4 * i:4 * i + 4])
            score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
            keep = np.nonzero(score >= score_threshold)[0]
            if keep.size == 0:
                continue
            cols, rows = self.grids[s]
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
        boxes_a[:, [0, 2]] /= sx
        boxes_a[:, [1, 3]] /= sy
        kps_a[:, :, 0] /= sx
        kps_a[:, :, 1] /= sy
        return boxes_a, kps_a, scores_a


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
