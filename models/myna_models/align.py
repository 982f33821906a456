"""5-point similarity alignment to SFace's 112x112 (ArcFace) template, numpy only.

Matches OpenCV's ``FaceRecognizerSF::alignCrop``: least-squares similarity transform
(Umeyama) from YuNet's landmarks to the template, then an affine warp with bilinear
interpolation and a black border (``cv2.warpAffine(..., INTER_LINEAR)``).
"""

from __future__ import annotations

import numpy as np

SIZE = 112
# right eye, left eye, nose tip, right mouth corner, left mouth corner (MODELS.md order)
TEMPLATE = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray = TEMPLATE) -> np.ndarray:
    """2x3 matrix M (rotation + uniform scale + translation) minimising ||M·src - dst||² (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / n
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    u, s, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov) == 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            r = u @ vt
        else:
            d1 = d.copy()
            d1[1] = -1.0
            r = u @ np.diag(d1) @ vt
    else:
        r = u @ np.diag(d) @ vt
    var_s = (sc ** 2).sum() / n
    if var_s <= 0:
        raise ValueError("degenerate landmarks (all at one point)")
    scale = float((s * d).sum() / var_s)
    t = mu_d - scale * (r @ mu_s)
    return np.hstack([scale * r, t[:, None]])


def warp_affine(img: np.ndarray, m: np.ndarray, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """Like ``cv2.warpAffine(img, m, size, flags=INTER_LINEAR, borderValue=0)`` for HxW[xC] uint8.

    The four bilinear taps are plain gathers with no masks: read straight from the frame
    when the face is inside it, else from a copy of just the face patch with zeros where
    it leaves the image. Within 1 grey level of OpenCV.
    """
    w_out, h_out = size
    inv_a = np.linalg.inv(m[:, :2])
    inv_t = -inv_a @ m[:, 2]
    ys, xs = _out_grid(h_out, w_out)
    sx = inv_a[0, 0] * xs + inv_a[0, 1] * ys + inv_t[0]
    sy = inv_a[1, 0] * xs + inv_a[1, 1] * ys + inv_t[1]
    h, w = img.shape[:2]
    # a tap at -2 or -1 (w or w+1) is outside: clipping there keeps both taps outside, i.e. zero
    sx, sy = np.clip(sx, -2, w), np.clip(sy, -2, h)
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0
    bx0, by0 = int(x0.min()), int(y0.min())
    bx1, by1 = int(x0.max()) + 2, int(y0.max()) + 2
    src = img if img.ndim == 3 else img[:, :, None]
    if bx0 >= 0 and by0 >= 0 and bx1 <= w and by1 <= h and src.flags.c_contiguous:
        patch, bx0, by0 = src, 0, 0  # the face is inside the frame: read the frame itself, no copy
    else:
        patch = np.zeros((by1 - by0, bx1 - bx0, src.shape[2]), np.uint8)
        cx0, cy0, cx1, cy1 = max(bx0, 0), max(by0, 0), min(bx1, w), min(by1, h)
        if cx1 > cx0 and cy1 > cy0:
            patch[cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0] = src[cy0:cy1, cx0:cx1]
    pw = patch.shape[1]
    i00 = ((y0 - by0) * pw + (x0 - bx0)).reshape(-1)
    taps = patch.reshape(-1, src.shape[2]).take(np.stack([i00, i00 + 1, i00 + pw, i00 + pw + 1]), axis=0)
    p00, p01, p10, p11 = taps.astype(np.float32)
    fx = fx.reshape(-1, 1).astype(np.float32)
    fy = fy.reshape(-1, 1).astype(np.float32)
    top = p00 + fx * (p01 - p00)
    val = top + fy * (p10 + fx * (p11 - p10) - top)
    out = np.clip(np.rint(val), 0, 255).astype(np.uint8).reshape(h_out, w_out, -1)
    return out if img.ndim == 3 else out[:, :, 0]


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _out_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    g = _GRIDS.get((h, w))
    if g is None:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        g = _GRIDS[(h, w)] = (ys, xs)
    return g


def align_face(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 crop SFace expects, same channel order as ``img``."""
    return warp_affine(img, similarity_transform(landmarks))
