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
    """Like ``cv2.warpAffine(img, m, size, flags=INTER_LINEAR, borderValue=0)`` for HxWxC uint8."""
    w_out, h_out = size
    a = m[:, :2]
    inv_a = np.linalg.inv(a)
    inv_t = -inv_a @ m[:, 2]
    ys, xs = np.mgrid[0:h_out, 0:w_out].astype(np.float64)
    sx = inv_a[0, 0] * xs + inv_a[0, 1] * ys + inv_t[0]
    sy = inv_a[1, 0] * xs + inv_a[1, 1] * ys + inv_t[1]
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    h, w = img.shape[:2]
    src = img if img.ndim == 3 else img[:, :, None]
    out = np.zeros((h_out, w_out, src.shape[2]), dtype=np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        yy = y0 + dy
        vy = (yy >= 0) & (yy < h)
        yc = np.clip(yy, 0, h - 1)
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xx = x0 + dx
            valid = (vy & (xx >= 0) & (xx < w))[..., None]
            xc = np.clip(xx, 0, w - 1)
            out += np.where(valid, src[yc, xc], 0) * (wy * wx)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out if img.ndim == 3 else out[:, :, 0]


def align_face(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 crop SFace expects, same channel order as ``img``."""
    return warp_affine(img, similarity_transform(landmarks))
