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
  broadcasts the slope element by element and has no blocked-layout (NCHWc) kernel, so each
  one forces a layout change before and after the convolution it follows: measured here, the
  PRelus took 57 % of SFace's time. ``PRelu(x) = s*x + (1-s)*Relu(x)`` for every x and s, and
  onnxruntime runs that form as two per-channel scalings and a Relu inside the blocked
  layout: ~1.8x faster per embedding (~1.3x where there is no blocked layout, as on ARM),
  outputs equal to 1e-6.
"""

from __future__ import annotations

import numpy as np

from myna_models.errors import ModelError

__all__ = ["detector_graph", "recognizer_graph", "DETECTOR_INPUT", "STRIDE_ALIGN"]

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


def recognizer_graph(data: bytes) -> bytes:
    """The recognizer with every constant per-channel PRelu written as ``s*x + (1-s)*Relu(x)``."""
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
