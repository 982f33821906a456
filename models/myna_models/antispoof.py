"""Passive presentation-attack detection (PAD): MiniFASNet on one camera frame, through onnxruntime.

The weights are Minivision's Silent-Face-Anti-Spoofing models (Apache-2.0), published as
legacy PyTorch ``.pth`` state dicts. The reader never runs torch: the manifest pins the
``.pth`` bytes, :mod:`myna_models.pth` parses them without executing their pickle, and this
module derives the ONNX graph it runs, in memory (nothing derived is written to disk, as
for the face models in :mod:`myna_models.graphs`). Two networks look at the same face:

* MiniFASNetV2 on the face box scaled 2.7x around its centre (face and near surroundings),
* MiniFASNetV1SE on the box scaled 4.0x (face, shoulders, the edges of a photo or a screen),

each resized to 80x80, BGR, raw 0..255 values (upstream's own ``to_tensor`` does not divide
by 255). Each gives softmax probabilities over three classes (upstream's label 1 is a real
face; 0 and 2 are kinds of attack). Upstream adds the two softmaxes and takes the argmax;
:meth:`AntiSpoof.score` returns their mean for class 1 (upstream's "score" value/2 when the
label is 1), so it is a probability in 0..1.

How the graph is derived (the same function as upstream's network in eval mode):
every BatchNorm follows a bias-free convolution or linear layer, so it is folded into that
layer's weights (``W*g/sqrt(v+eps)``, bias ``b-m*g/sqrt(v+eps)``); dropout is the identity at
inference; the head ``linear -> BatchNorm1d -> prob`` has no non-linearity, so it is folded
into one 512->3 ``Gemm``. The layer list is upstream's; channel counts, kernel sizes and
groups are read from the weights, and every weight must be used exactly once. Both networks
live in one graph, so one ``run`` scores a frame. Two rewrites are for onnxruntime's speed only
and do not change the function (outputs equal to ~1e-6, tested):

* onnxruntime's ``PRelu`` is slow and has no blocked-layout (NCHWc) kernel (graphs.py). Where
  the blocked layout exists (x86 with AVX2), PReLU is written ``s*x + Relu((1-s)*x)`` (all
  slopes here are < 1): both scalings run as blocked per-channel convolutions and the Relu and
  the Add fuse into them. Without it (ARM), ``Max(x, s*x)`` (exact for s <= 1): two passes.
* MiniFASNet's pruned channel counts (13, 26, 103, 154, 231, 308...) are not multiples of the
  blocked layout's 8 or 16 channels, and onnxruntime then leaves those layers in plain NCHW with
  a layout conversion around each. With the blocked layout, every layer is padded with zero
  channels to a multiple of 16 (zero weights and bias in, zero weights out): the padding
  channels stay exactly 0 and contribute nothing. Measured 1.5x faster for the pair here; on
  ARM the padding would only add work, so it is not applied there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from myna_models.detect import _as_bgr
from myna_models.errors import ModelError
from myna_models.manifest import Manifest, load_manifest, read_verified
from myna_models.pth import load_state_dict

__all__ = ["AntiSpoof", "antispoof_graph", "crop_box", "crop_patch", "resize_linear", "adjust_box",
           "INPUT_SIZE", "REAL_CLASS", "DEFAULT_THRESHOLD"]

INPUT_SIZE = 80          # both networks take 80x80 crops
REAL_CLASS = 1           # upstream's label for a live face
BN_EPS = 1e-5            # torch's BatchNorm default, which upstream uses
DEFAULT_THRESHOLD = 0.5  # used only if the manifest has no [antispoof] threshold
OPSET = 17
# With onnxruntime's blocked layout, every channel count is padded with zero channels up to a
# multiple of this (the AVX-512 block; a multiple of AVX2's 8): see the module docstring.
CHANNEL_BLOCK = 16


# ------------------------------------------------------------------ graph derivation

def _strip_module(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop DataParallel's ``module.`` prefix (upstream's files have it; upstream strips it too)."""
    if all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


class _NetBuilder:
    """Emits the nodes of one MiniFASNet (V1, V2, V1SE or V2SE: read from the state dict's keys)."""

    def __init__(self, state: Mapping[str, np.ndarray], tag: str, name: str, blocked: bool) -> None:
        from onnx import helper, numpy_helper

        self.h, self.nh = helper, numpy_helper
        self.state = _strip_module(state)
        self.tag, self.name = tag, name
        self.used: set[str] = set()
        self.nodes: list = []
        self.inits: list = []
        self._n = 0
        self.blocked = blocked
        self.block = CHANNEL_BLOCK if blocked else 1
        self.width: dict[str, int] = {}   # channels each emitted tensor carries (real + zero padding)

    # -- helpers
    def _w(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise ModelError(f"{self.name}: the weights have no {key}: not a MiniFASNet state dict")
        self.used.add(key)
        a = np.asarray(self.state[key], dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ModelError(f"{self.name}: the weights {key} are not all finite numbers")
        return a

    def _const(self, arr: np.ndarray, hint: str) -> str:
        self._n += 1
        name = f"{self.tag}_{hint}_{self._n}"
        self.inits.append(self.nh.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def _node(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        self._n += 1
        out = f"{self.tag}_{hint}_{self._n}"
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def _bn(self, prefix: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
        g, b = self._w(f"{prefix}.weight"), self._w(f"{prefix}.bias")
        m, v = self._w(f"{prefix}.running_mean"), self._w(f"{prefix}.running_var")
        if not (g.shape == b.shape == m.shape == v.shape == (channels,)) or np.any(v < 0):
            raise ModelError(f"{self.name}: batch norm {prefix} does not fit its layer")
        self.used.add(f"{prefix}.num_batches_tracked")
        scale = g / np.sqrt(v + BN_EPS)
        return scale, b - m * scale

    def padded(self, c: int) -> int:
        return -(-c // self.block) * self.block if self.block > 1 else c

    def conv_bn(self, x: str, c_in: int, conv: str, bn: str, stride: int, pad: int) -> tuple[str, int]:
        """Bias-free Conv2d followed by BatchNorm2d, folded into one Conv with a bias.

        ``c_in`` is the layer's real input channel count; the tensor ``x`` may carry more
        (zero) channels: see ``CHANNEL_BLOCK``."""
        w = self._w(f"{conv}.weight")
        if w.ndim != 4 or w.shape[1] == 0 or c_in % w.shape[1]:
            raise ModelError(f"{self.name}: convolution {conv} does not fit its input ({c_in} channels)")
        groups = c_in // w.shape[1]
        c_out = w.shape[0]
        if groups not in (1, c_in) or (groups == c_in and c_out != c_in):
            raise ModelError(f"{self.name}: convolution {conv} has a grouping MiniFASNet does not use")
        scale, bias = self._bn(bn, c_out)
        w = w * scale[:, None, None, None]
        t_in, t_out = self.width.get(x, c_in), self.padded(c_out)
        wp = np.zeros((t_out, 1 if groups > 1 else t_in) + w.shape[2:])
        wp[:c_out, :w.shape[1]] = w
        bp = np.zeros(t_out)
        bp[:c_out] = bias
        k = [int(w.shape[2]), int(w.shape[3])]
        y = self._node("Conv", [x, self._const(wp, "w"), self._const(bp, "b")], "conv", kernel_shape=k,
                       strides=[stride, stride], pads=[pad, pad, pad, pad], group=t_in if groups > 1 else 1)
        self.width[y] = t_out
        return y, c_out

    def _per_channel(self, v: np.ndarray, x: str) -> np.ndarray:
        out = np.zeros((self.width[x], 1, 1))
        out[:v.shape[0], 0, 0] = v
        return out

    def prelu(self, x: str, key: str, channels: int) -> str:
        """PReLU in the form onnxruntime runs fastest here (module docstring); all are exact."""
        s = self._w(key)
        if s.shape != (channels,):
            raise ModelError(f"{self.name}: PReLU {key} does not fit its layer")
        slope = self._const(self._per_channel(s, x), "slope")
        sx = self._node("Mul", [x, slope], "prelu_sx")
        if not self.blocked and np.all(s <= 1.0):
            y = self._node("Max", [x, sx], "prelu")                       # s <= 1: max(x, s*x)
        elif self.blocked and np.all(s < 1.0):
            a = self._node("Mul", [x, self._const(self._per_channel(1.0 - s, x), "one_minus_slope")], "prelu_a")
            r = self._node("Relu", [a], "prelu_relu")                     # 1-s > 0: Relu((1-s)*x)
            y = self._node("Add", [sx, r], "prelu")
        else:
            r = self._node("Relu", [x], "prelu_relu")
            rs = self._node("Mul", [r, self._const(self._per_channel(1.0 - s, x), "one_minus_slope")], "prelu_rs")
            y = self._node("Add", [sx, rs], "prelu")
        self.width[y] = self.width[x]
        return y

    def conv_block(self, x: str, c_in: int, mod: str, stride: int, pad: int) -> tuple[str, int]:
        y, c = self.conv_bn(x, c_in, f"{mod}.conv", f"{mod}.bn", stride, pad)
        return self.prelu(y, f"{mod}.prelu.weight", c), c

    def se(self, x: str, c: int, mod: str) -> str:
        p = self._node("GlobalAveragePool", [x], "se_pool")
        self.width[p] = self.width[x]
        h, ch = self.conv_bn(p, c, f"{mod}.fc1", f"{mod}.bn1", 1, 0)
        h2 = self._node("Relu", [h], "se_relu")
        self.width[h2] = self.width[h]
        h = h2
        g, cg = self.conv_bn(h, ch, f"{mod}.fc2", f"{mod}.bn2", 1, 0)
        if cg != c:
            raise ModelError(f"{self.name}: squeeze-excitation {mod} does not fit its block")
        g = self._node("Sigmoid", [g], "se_gate")
        y = self._node("Mul", [x, g], "se")
        self.width[y] = self.width[x]
        return y

    def depth_wise(self, x: str, c_in: int, mod: str, stride: int, residual: bool) -> tuple[str, int]:
        y, c = self.conv_block(x, c_in, f"{mod}.conv", 1, 0)
        y, c = self.conv_block(y, c, f"{mod}.conv_dw", stride, 1)
        y, c = self.conv_bn(y, c, f"{mod}.project.conv", f"{mod}.project.bn", 1, 0)
        if residual:
            if c != c_in:
                raise ModelError(f"{self.name}: residual block {mod} changes the channel count")
            if f"{mod}.se_module.fc1.weight" in self.state:
                y = self.se(y, c, f"{mod}.se_module")
            w = self.width[y]
            y = self._node("Add", [x, y], "residual")
            self.width[y] = w
        return y, c

    def residual_stage(self, x: str, c: int, stage: str) -> tuple[str, int]:
        pat = re.compile(rf"^{re.escape(stage)}\.model\.(\d+)\.")
        count = len({int(m.group(1)) for k in self.state if (m := pat.match(k))})
        if count == 0:
            raise ModelError(f"{self.name}: the weights have no blocks in {stage}")
        for i in range(count):
            x, c = self.depth_wise(x, c, f"{stage}.model.{i}", 1, True)
        return x, c

    # -- the network
    def build(self, x: str, size: int) -> str:
        """Nodes from an NCHW float input ``x`` to the 3 class logits; returns the logits' name."""
        y, c = self.conv_block(x, 3, "conv1", 2, 1)
        y, c = self.conv_block(y, c, "conv2_dw", 1, 1)
        y, c = self.depth_wise(y, c, "conv_23", 2, False)
        y, c = self.residual_stage(y, c, "conv_3")
        y, c = self.depth_wise(y, c, "conv_34", 2, False)
        y, c = self.residual_stage(y, c, "conv_4")
        y, c = self.depth_wise(y, c, "conv_45", 2, False)
        y, c = self.residual_stage(y, c, "conv_5")
        y, c = self.conv_block(y, c, "conv_6_sep", 1, 0)
        # upstream sizes the last depthwise kernel to cover the whole 1/16 feature map
        k = (size + 15) // 16
        if self.state.get("conv_6_dw.conv.weight", np.zeros((0, 0, 0, 0))).shape[2:] != (k, k):
            raise ModelError(f"{self.name}: the final depthwise kernel is not {k}x{k} for {size}x{size} input")
        y, c = self.conv_bn(y, c, "conv_6_dw.conv", "conv_6_dw.bn", 1, 0)
        w = self.width[y]
        y = self._node("Flatten", [y], "flatten", axis=1)
        self.width[y] = w
        lin, prob = self._w("linear.weight"), self._w("prob.weight")
        if lin.ndim != 2 or lin.shape[1] != c or prob.ndim != 2 or prob.shape[1] != lin.shape[0]:
            raise ModelError(f"{self.name}: the classifier head does not fit the features")
        scale, bias = self._bn("bn", lin.shape[0])
        head = np.zeros((prob.shape[0], self.width[y]))
        head[:, :c] = prob @ (lin * scale[:, None])        # (classes, c), zero for padding channels
        head_bias = prob @ bias
        logits = self._node("Gemm", [y, self._const(head, "head_w"), self._const(head_bias, "head_b")],
                            "logits", transB=1)
        unused = sorted(set(self.state) - self.used)
        if unused:
            raise ModelError(f"{self.name}: the weights have parts this network does not use ({unused[0]}, ...)")
        return logits


def antispoof_graph(states: Sequence[Mapping[str, np.ndarray]], names: Sequence[str] | None = None,
                    size: int = INPUT_SIZE, blocked_layout: bool = True) -> bytes:
    """One ONNX model holding every network: input ``crop_i`` uint8 [n, size, size, 3] BGR per network,
    outputs ``logits_i`` and ``prob_i`` per network and ``prob``, the mean of their softmaxes."""
    try:
        import onnx
        from onnx import helper
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ModelError("the Python package 'onnx' is missing (pip install the pinned myna-reader)") from None
    names = list(names) if names is not None else [f"network {i}" for i in range(len(states))]
    nodes, inits, inputs, outputs, probs = [], [], [], [], []
    for i, state in enumerate(states):
        b = _NetBuilder(state, f"n{i}", names[i], blocked_layout)
        inp = f"crop_{i}"
        f = b._node("Cast", [inp], "float", to=onnx.TensorProto.FLOAT)
        x = b._node("Transpose", [f], "nchw", perm=[0, 3, 1, 2])
        logits = b.build(x, size)
        b.nodes.append(helper.make_node("Identity", [logits], [f"logits_{i}"], name=f"n{i}_logits_out"))
        b.nodes.append(helper.make_node("Softmax", [logits], [f"prob_{i}"], name=f"n{i}_softmax", axis=1))
        nodes += b.nodes
        inits += b.inits
        inputs.append(helper.make_tensor_value_info(inp, onnx.TensorProto.UINT8, ["n", size, size, 3]))
        outputs += [helper.make_tensor_value_info(f"logits_{i}", onnx.TensorProto.FLOAT, ["n", 3]),
                    helper.make_tensor_value_info(f"prob_{i}", onnx.TensorProto.FLOAT, ["n", 3])]
        probs.append(f"prob_{i}")
    if not probs:
        raise ModelError("no anti-spoofing network to build")
    inits.append(onnx.numpy_helper.from_array(np.asarray(1.0 / len(probs), np.float32), "inv_count"))
    nodes.append(helper.make_node("Sum", probs, ["prob_sum"], name="prob_sum"))
    nodes.append(helper.make_node("Mul", ["prob_sum", "inv_count"], ["prob"], name="prob_mean"))
    outputs.append(helper.make_tensor_value_info("prob", onnx.TensorProto.FLOAT, ["n", 3]))
    graph = helper.make_graph(nodes, "myna_antispoof", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="myna_models.antispoof")
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"the derived anti-spoofing graph is invalid: {e}") from None
    return model.SerializeToString()


# ------------------------------------------------------------------ pre-processing

# YuNet's box -> upstream's (RetinaFace) box: wider, shorter, centred lower. Fitted on the three
# upstream samples whose boxes upstream drew; leave-one-out IoU with upstream's box 0.74 -> 0.89.
BOX_WIDTH_GAIN = 1.16
BOX_HEIGHT_GAIN = 0.90
BOX_CENTRE_DROP = 0.07   # of YuNet's box height


def adjust_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """Map a YuNet face box (x, y, w, h) onto the geometry of the detector the networks were
    trained with. Why: the crop is the box scaled 2.7x / 4x and squeezed to 80x80, so the box's
    aspect ratio and centre decide what the network sees. YuNet's box runs from the hairline to
    the chin and is narrow; upstream's RetinaFace box is ~16 % wider and ~10 % shorter, centred
    ~7 % of the height lower (measured on upstream's samples, docs/antispoof.md)."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2 + BOX_CENTRE_DROP * h
    nw, nh = w * BOX_WIDTH_GAIN, h * BOX_HEIGHT_GAIN
    return cx - nw / 2, cy - nh / 2, nw, nh


def crop_box(src_w: int, src_h: int, box: Sequence[float], scale: float) -> tuple[int, int, int, int]:
    """Upstream's crop rule: the box scaled around its centre (the scale is lowered if the
    result would not fit the image), shifted back inside the image, as inclusive integer
    corners (left, top, right, bottom)."""
    x, y, bw, bh = (float(v) for v in box)
    if not (bw > 0 and bh > 0 and math.isfinite(x + y + bw + bh)):
        raise ValueError(f"face box {tuple(box)} is empty or not finite")
    scale = min((src_h - 1) / bh, (src_w - 1) / bw, float(scale))
    nw, nh = bw * scale, bh * scale
    cx, cy = x + bw / 2, y + bh / 2
    left, top, right, bottom = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > src_w - 1:
        left -= right - src_w + 1
        right = src_w - 1
    if bottom > src_h - 1:
        top -= bottom - src_h + 1
        bottom = src_h - 1
    return int(left), int(top), int(right), int(bottom)


RESIZE_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: interpolation weights are integers out of 2048


@lru_cache(maxsize=256)
def _taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and integer weights of a linear resize along one axis, as OpenCV computes them:
    pixel centres aligned, the position in float32, weights rounded to 1/2048. OpenCV zeroes the
    fraction at the left and right edges, but keeps it at the top and bottom (it only clamps the
    row index there); ``clamp_weights`` picks which."""
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = (pos - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        frac[i0 < 0] = 0
        frac[i0 >= src - 1] = 0
    one = np.float32(1 << RESIZE_BITS)
    w1 = np.rint(frac * one).astype(np.int64)
    w0 = np.rint((np.float32(1) - frac) * one).astype(np.int64)
    out = (np.clip(i0, 0, src - 1), np.clip(i0 + 1, 0, src - 1), w0.astype(np.int32), w1.astype(np.int32))
    for a in out:
        a.setflags(write=False)  # cached: shared between calls
    return out


def resize_linear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a uint8 HxWxC image, bit-exact with OpenCV's ``cv2.resize`` (INTER_LINEAR).

    Why bit-exact: upstream crops with cv2.resize, and these networks read fine texture: one
    grey level of difference on the resized patch (a float resize instead of OpenCV's
    fixed-point one) moved the score of upstream's sample F1 by 0.016. So this follows OpenCV's
    arithmetic: horizontal pass with 11-bit integer weights, then the vertical pass as its SIMD
    code does it (``((h0>>4)*b0 >> 16) + ((h1>>4)*b1 >> 16)``, rounded shift by 2, saturated).
    No anti-aliasing when shrinking, like OpenCV. Checked against cv2 in the tests.
    """
    img = np.ascontiguousarray(img)
    if img.ndim == 2:
        return _resize_region(img[:, :, None], 0, 0, img.shape[1], img.shape[0], width, height)[:, :, 0]
    return _resize_region(img, 0, 0, img.shape[1], img.shape[0], width, height)


def _resize_region(img: np.ndarray, left: int, top: int, rw: int, rh: int, width: int, height: int) -> np.ndarray:
    """:func:`resize_linear` of ``img[top:top+rh, left:left+rw]``, reading only the bytes it needs
    from the C-contiguous ``img`` (the camera frame is neither copied nor widened)."""
    full_w, ch = img.shape[1], img.shape[2]
    rel, wa0, wa1, wb0, wb1 = _resize_plan(rh, rw, full_w, ch, height, width)
    taps = img.reshape(-1).take(rel + (top * full_w + left) * ch).astype(np.int32)
    p00, p01, p10, p11 = taps.reshape(4, height, width * ch)
    h0 = p00 * wa0 + p01 * wa1
    h1 = p10 * wa0 + p11 * wa1
    v = (((h0 >> 4) * wb0) >> 16) + (((h1 >> 4) * wb1) >> 16)
    return np.clip((v + 2) >> 2, 0, 255).astype(np.uint8).reshape(height, width, ch)


@lru_cache(maxsize=64)
def _resize_plan(rh: int, rw: int, full_w: int, ch: int, height: int, width: int):
    """Byte offsets of the 4 taps of every output value, relative to the region's first byte, and
    the weights laid out to match (rows x width*ch, so the arithmetic runs on contiguous rows).
    Cached: a face that stays put gives the same crop size frame after frame."""
    y0, y1, b0, b1 = _taps(rh, height, False)
    x0, x1, a0, a1 = _taps(rw, width, True)
    c = np.arange(ch)
    cols0 = (x0[:, None] * ch + c).reshape(-1)
    cols1 = (x1[:, None] * ch + c).reshape(-1)
    r0, r1 = (y0 * full_w * ch)[:, None], (y1 * full_w * ch)[:, None]
    rel = np.stack([r0 + cols0, r0 + cols1, r1 + cols0, r1 + cols1]).reshape(-1)
    out = (rel, np.repeat(a0, ch), np.repeat(a1, ch), b0[:, None], b1[:, None])
    for a in out:
        a.setflags(write=False)
    return out


def crop_patch(bgr: np.ndarray, box: Sequence[float], scale: float, size: int = INPUT_SIZE) -> np.ndarray:
    """The size x size BGR patch a network sees for this face box (upstream's generate_patches)."""
    bgr = np.ascontiguousarray(bgr)
    h, w = bgr.shape[:2]
    left, top, right, bottom = crop_box(w, h, box, scale)
    left, top = max(left, 0), max(top, 0)
    if right < left or bottom < top:
        raise ValueError(f"face box {tuple(box)} gives an empty crop")
    return _resize_region(bgr, left, top, right - left + 1, bottom - top + 1, size, size)


# ------------------------------------------------------------------ the scorer

@dataclass(frozen=True)
class _Net:
    file: str
    scale: float


class AntiSpoof:
    """Both MiniFASNets in one onnxruntime session; verified against the manifest at load.

    ``score(frame, box)`` is P(real) in 0..1 for the face at ``box`` (YuNet's x, y, w, h);
    a face is taken as live when the score reaches ``threshold`` (from the manifest).
    Keeps no per-frame state.
    """

    def __init__(self, models_dir: Path | str, manifest: Path | str | Manifest | None = None,
                 threads: int = 1, *, blocked_layout: bool | None = None) -> None:
        """``threads``: onnxruntime compute threads (1 by default: the networks are small, and the
        detector and recognizer need the other core). ``blocked_layout``: as for FaceEngine
        (default: whatever this CPU has, graphs.blocked_layout_available)."""
        import onnxruntime as ort

        from myna_models.engine import session_options, usable_threads
        from myna_models.graphs import blocked_layout_available

        self.models_dir = Path(models_dir)
        self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        self.threads = usable_threads(threads)
        self.blocked_layout = blocked_layout_available() if blocked_layout is None else bool(blocked_layout)
        entries = self.manifest.by_role("antispoof")
        if not entries:
            raise ModelError(f"the model manifest {self.manifest.path} lists no anti-spoofing model")
        raw = {str(m.get("file")): m for m in self.manifest.data.get("model") or []}
        nets, states = [], []
        for e in entries:
            try:
                scale = float(raw[e.file]["crop_scale"])
            except (KeyError, TypeError, ValueError):
                raise ModelError(f"the model manifest {self.manifest.path} gives no crop_scale for {e.file}") from None
            if not (1.0 <= scale <= 8.0):
                raise ModelError(f"the model manifest {self.manifest.path} gives {e.file} an implausible crop_scale")
            states.append(load_state_dict(read_verified(self.models_dir, e), e.file))
            nets.append(_Net(e.file, scale))
        self.nets = tuple(nets)
        self.hashes = {e.file: e.sha256 for e in entries}
        section = dict(self.manifest.data.get("antispoof") or {})
        self.threshold = float(section.get("threshold", DEFAULT_THRESHOLD))
        if not (0.0 < self.threshold < 1.0):
            raise ModelError(f"the model manifest {self.manifest.path} has an anti-spoofing threshold outside 0..1")
        graph = antispoof_graph(states, [n.file for n in nets], blocked_layout=self.blocked_layout)
        try:
            self._session = ort.InferenceSession(graph, sess_options=session_options(self.threads, self.blocked_layout),
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"the anti-spoofing graph does not load in onnxruntime: {e}") from None
        self._inputs = [f"crop_{i}" for i in range(len(nets))]

    def patches(self, bgr: np.ndarray, box: Sequence[float], *, adjust: bool = True) -> list[np.ndarray]:
        """The 80x80 BGR patch each network sees. ``adjust``: ``box`` is YuNet's and is first mapped
        to upstream's box geometry (:func:`adjust_box`); False takes ``box`` as upstream's own."""
        bgr = _as_bgr(bgr)
        b = adjust_box(box) if adjust else tuple(float(v) for v in box)
        return [crop_patch(bgr, b, n.scale) for n in self.nets]

    def probabilities(self, bgr: np.ndarray, box: Sequence[float], *, adjust: bool = True) -> np.ndarray:
        """(3,) mean of the networks' softmaxes; index 1 (:data:`REAL_CLASS`) is a live face."""
        feeds = {name: p[None] for name, p in zip(self._inputs, self.patches(bgr, box, adjust=adjust))}
        return self._session.run(["prob"], feeds)[0][0]

    def score(self, bgr: np.ndarray, box: tuple[float, float, float, float]) -> float:
        """P(real) in 0..1 for the face at ``box`` (x, y, w, h in frame pixels)."""
        return float(self.probabilities(bgr, box)[REAL_CLASS])

    def is_live(self, score: float) -> bool:
        return score >= self.threshold
