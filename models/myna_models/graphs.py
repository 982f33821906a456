"""In-memory derivations of the verified model graphs, made once at load.

The manifest pins the upstream bytes; the daemon hashes them, then derives the graphs it
actually runs here, in memory, with ``onnx``. Nothing derived is written to disk, so the
chain of trust stays "these sha256 bytes, through this code". Both derivations compute the
same function as the file they come from (checked by tests against the original graph and
against OpenCV's own runtime, and by ``bench/face_bench.py`` on every run):

* :func:`detector_graph`: YuNet ships with a static 1x3x640x640 input. Its convolutions,
  reshapes (``[1, -1, C]``) and upsampling (scale 2) do not depend on that size, so the
  height and width are made free: a 640x480 camera frame runs at 640x480 (25 % fewer pixels
  than the black 640 canvas it needed before). The graph also takes the camera's uint8 HxWx3 BGR
  frame as it is (Cast + Transpose inside onnxruntime), which saves a float copy per frame.
  This is what OpenCV's ``FaceDetectorYN`` does by reshaping its network to the input size.

* :func:`recognizer_graph`: SFace uses 27 per-channel ``PRelu``. onnxruntime's CPU ``PRelu``
  is slow (measured: 57 % of SFace's time, ~0.55 ms each against ~0.04 ms for a Relu of the
  same tensor) and has no blocked-layout (NCHWc) kernel. It is replaced by a form whose
  operators onnxruntime runs well on this CPU (:func:`blocked_layout_available`):

  - with the blocked layout (x86 with AVX2): ``PRelu(x) = s*x + (1-s)*Relu(x)``, true for
    every x and s. onnxruntime runs the two per-channel scalings and the Relu inside the blocked
    layout, fused into its convolutions: ~1.8x faster per embedding, outputs equal to 1e-6.
  - without it (ARM; x86 without AVX2): there nothing is fused and that form costs four passes
    over the tensor. ``PRelu(x) = Max(x, s*x)`` for every slope s <= 1 costs two and is exact
    to the bit (s*x <= x when x > 0, s*x >= x when x < 0, and rounding keeps both). A PRelu
    with a slope above 1 (SFace has three such channels, in its first two PRelus) keeps the
    first form.
"""

from __future__ import annotations

import platform

import numpy as np

from myna_models.errors import ModelError

__all__ = ["detector_graph", "recognizer_graph", "blocked_layout_available", "DETECTOR_INPUT", "STRIDE_ALIGN"]

DETECTOR_INPUT = "frame"   # uint8 [1, height, width, 3], BGR
STRIDE_ALIGN = 32          # YuNet's largest stride: height and width must be multiples of it


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ModelError("the Python package 'onnx' is missing (pip install the pinned myna-reader)") from None
    return onnx, helper, numpy_helper


def _load(data: bytes, what: str):
    onnx, _, _ = _onnx()
    try:
        return onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ModelError(f"the {what} model is not a readable ONNX file ({type(e).__name__})") from None


def detector_graph(data: bytes) -> bytes:
    """YuNet with a free-size uint8 BGR input ``frame`` [1, height, width, 3]; ModelError if it is not YuNet-shaped."""
    onnx, helper, _ = _onnx()
    model = _load(data, "detector")
    g = model.graph
    if len(g.input) != 1:
        raise ModelError(f"the detector has {len(g.input)} inputs, expected 1")
    old = g.input[0]
    dims = old.type.tensor_type.shape.dim
    if len(dims) != 4 or dims[1].dim_value != 3:
        raise ModelError("the detector's input is not an NCHW 3-channel image")
    for node in g.node:
        if node.op_type in ("Resize", "Upsample") and len(node.input) >= 4 and node.input[3]:
            raise ModelError("the detector resizes to fixed sizes and cannot run at other input sizes")
    float_in = old.name
    cast_out = f"{DETECTOR_INPUT}_float"
    prefix = [
        helper.make_node("Cast", [DETECTOR_INPUT], [cast_out], to=onnx.TensorProto.FLOAT, name="myna_cast"),
        helper.make_node("Transpose", [cast_out], [float_in], perm=[0, 3, 1, 2], name="myna_nhwc_to_nchw"),
    ]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(prefix + nodes)
    del g.input[:]
    g.input.append(helper.make_tensor_value_info(DETECTOR_INPUT, onnx.TensorProto.UINT8, [1, "height", "width", 3]))
    # shapes recorded for 640x640 would contradict the new sizes: let onnxruntime infer them
    del g.value_info[:]
    for out in g.output:
        shape = out.type.tensor_type.shape
        if len(shape.dim) == 3:
            shape.dim[1].Clear()
            shape.dim[1].dim_param = f"{out.name}_anchors"
    return model.SerializeToString()


def blocked_layout_available(machine: str | None = None, cpu_flags: set[str] | None = None) -> bool:
    """Whether onnxruntime's CPU provider runs convolutions here in its blocked (NCHWc) layout.

    Its graph optimiser inserts that layout only where its kernels exist: x86-64 with AVX2
    and FMA (or AVX-512). ARM wheels are built without them (a build option, off by default),
    so a Raspberry Pi runs plain NCHW. Arguments are for tests; by default this machine's
    architecture and, on Linux, its /proc/cpuinfo flags (elsewhere an x86-64 CPU is assumed
    to have AVX2, which every x86-64 CPU sold since 2015 has).
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return False
    if cpu_flags is None:
        cpu_flags = _cpu_flags()
        if cpu_flags is None:
            return True
    return ("avx2" in cpu_flags and "fma" in cpu_flags) or "avx512f" in cpu_flags


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def recognizer_graph(data: bytes, blocked_layout: bool = True) -> bytes:
    """The recognizer with every constant per-channel PRelu in the form onnxruntime runs fastest.

    ``blocked_layout``: whether the session will use onnxruntime's blocked layout
    (:func:`blocked_layout_available`); the module docstring says why the forms differ.
    """
    _, helper, numpy_helper = _onnx()
    model = _load(data, "recognizer")
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    for node in g.node:
        slope = inits.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 else None
        if slope is None:
            nodes.append(node)
            continue
        s = numpy_helper.to_array(slope)
        if s.dtype != np.float32:
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        tag = f"myna_prelu_{len(nodes)}"
        if not blocked_layout and bool(np.all(s <= 1.0)):
            nodes += [
                helper.make_node("Mul", [x, slope.name], [f"{tag}_sx"], name=f"{tag}_mul_s"),
                helper.make_node("Max", [x, f"{tag}_sx"], [y], name=f"{tag}_max"),
            ]
            continue
        g.initializer.append(numpy_helper.from_array((np.float32(1.0) - s).astype(np.float32), f"{tag}_1ms"))
        nodes += [
            helper.make_node("Mul", [x, slope.name], [f"{tag}_sx"], name=f"{tag}_mul_s"),
            helper.make_node("Relu", [x], [f"{tag}_relu"], name=f"{tag}_relu"),
            helper.make_node("Mul", [f"{tag}_relu", f"{tag}_1ms"], [f"{tag}_rs"], name=f"{tag}_mul_1ms"),
            helper.make_node("Add", [f"{tag}_sx", f"{tag}_rs"], [y], name=f"{tag}_add"),
        ]
    del g.node[:]
    g.node.extend(nodes)
    return model.SerializeToString()
