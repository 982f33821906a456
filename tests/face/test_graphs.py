"""The graphs derived in memory from the verified model bytes compute what the files compute."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from myna_models.engine import session_options
from myna_models.errors import ModelError
from myna_models.graphs import DETECTOR_INPUT, blocked_layout_available, detector_graph, recognizer_graph

pytestmark = pytest.mark.models

DETECTOR = "face_detection_yunet_2023mar.onnx"
RECOGNIZER = "face_recognition_sface_2021dec_int8bq_ort.onnx"


def _session(data: bytes, blocked_layout: bool = True) -> ort.InferenceSession:
    return ort.InferenceSession(data, sess_options=session_options(1, blocked_layout),
                                providers=["CPUExecutionProvider"])


def _optimised_ops(data: bytes, blocked_layout: bool, tmp_path) -> list[str]:
    """Op types of the graph onnxruntime runs (dumped to a test's temporary directory)."""
    so = session_options(1, blocked_layout)
    so.optimized_model_filepath = str(tmp_path / f"optimised_{int(blocked_layout)}.onnx")
    ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
    return [f"{n.domain}:{n.op_type}" if n.domain else n.op_type
            for n in onnx.load(so.optimized_model_filepath).graph.node]


# ---------------------------------------------------------------- recognizer

@pytest.mark.parametrize("blocked_layout", [True, False])
def test_recognizer_rewrite_removes_every_prelu_and_keeps_the_embedding(engine, photo, models_dir, blocked_layout):
    raw = (models_dir / RECOGNIZER).read_bytes()
    derived = recognizer_graph(raw, blocked_layout)
    ops = [n.op_type for n in onnx.load_model_from_string(derived).graph.node]
    n_prelu = [n.op_type for n in onnx.load_model_from_string(raw).graph.node].count("PRelu")
    assert "PRelu" not in ops
    if blocked_layout:
        assert ops.count("Relu") == n_prelu
    else:  # Max(x, s*x) wherever every slope is <= 1: all but SFace's first two PRelus
        assert ops.count("Max") == n_prelu - 2 and ops.count("Relu") == 2
    a, b = _session(raw, blocked_layout), _session(derived, blocked_layout)
    for name in ("lfw_tony_blair__1.jpg", "bbt_penny__3.jpg", "deepface_p12__2.jpg", "biden__1.jpg"):
        bgr = photo(name)
        crop = engine.align(bgr, max(engine.detect_still(bgr), key=lambda f: f.area))
        blob = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        va = a.run(None, {"data": blob})[0][0]
        vb = b.run(None, {"data": blob})[0][0]
        np.testing.assert_allclose(vb, va, rtol=0, atol=1e-4 * float(np.abs(va).max()))
        assert engine.score(va, vb) > 0.999999


def _conv_prelu_model(slope: np.ndarray) -> bytes:
    """Conv -> PRelu -> Conv with plain fp32 initializers: the layout of the fp32 SFace file."""
    rng = np.random.default_rng(7)
    c = slope.shape[0]
    w1 = numpy_helper.from_array(rng.normal(size=(c, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(4, c, 1, 1)).astype(np.float32), "w2")
    s = numpy_helper.from_array(slope.reshape(c, 1, 1).astype(np.float32), "slope")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1, 1, 1, 1]),
         helper.make_node("PRelu", ["h", "slope"], ["p"]),
         helper.make_node("Conv", ["p", "w2"], ["y"])],
        "conv_prelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w1, w2, s])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("slope", [
    np.array([0.25] * 8),
    np.array([-0.8, -0.1, 0.0, 0.3, 0.99, 1.0, 1.12, 2.5]),  # SFace has negative slopes and slopes above 1
])
@pytest.mark.parametrize("blocked_layout", [True, False])
def test_prelu_rewrite_is_exact_for_any_slope(slope, blocked_layout):
    raw = _conv_prelu_model(slope)
    x = np.random.default_rng(1).normal(size=(1, 3, 16, 16)).astype(np.float32) * 3
    want = _session(raw, blocked_layout).run(None, {"x": x})[0]
    got = _session(recognizer_graph(raw, blocked_layout), blocked_layout).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_prelu_as_max_is_equal_to_the_bit():
    """Max(x, s*x) picks exactly PRelu's value for every slope <= 1 (negative ones too), zeros and large values included."""
    slope = np.array([-0.8, -0.1, 0.0, 0.3, 0.99, 1.0], np.float32)
    raw = _conv_prelu_model(slope)
    derived = recognizer_graph(raw, blocked_layout=False)
    assert [n.op_type for n in onnx.load_model_from_string(derived).graph.node] == ["Conv", "Mul", "Max", "Conv"]
    # the PRelu alone, fed directly: cut the model after it
    g = onnx.load_model_from_string(raw)
    probe = helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 6, 16, 16])
    d = onnx.load_model_from_string(derived)
    for m in (g, d):
        m.graph.output.insert(0, probe)
    x = np.random.default_rng(2).normal(size=(1, 3, 16, 16)).astype(np.float32) * 3
    x[:, :, :2] = 0.0
    x[0, 0, 8] = [1e30] * 8 + [-1e30] * 8
    want = _session(g.SerializeToString(), False).run(["p", "y"], {"x": x})
    got = _session(d.SerializeToString(), False).run(["p", "y"], {"x": x})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_blocked_layout_is_off_when_asked_and_only_on_x86_with_avx2(models_dir, tmp_path):
    raw = (models_dir / RECOGNIZER).read_bytes()
    plain = _optimised_ops(recognizer_graph(raw, False), False, tmp_path)
    assert not [op for op in plain if op.startswith("com.microsoft.nchwc:")]
    if blocked_layout_available():
        assert [op for op in _optimised_ops(recognizer_graph(raw, True), True, tmp_path)
                if op.startswith("com.microsoft.nchwc:")]
    assert blocked_layout_available("aarch64") is False
    assert blocked_layout_available("x86_64", {"sse4_2", "avx"}) is False
    assert blocked_layout_available("x86_64", {"avx2", "fma"}) is True
    assert blocked_layout_available("AMD64", {"avx512f"}) is True


def test_recognizer_without_prelu_is_unchanged_in_function():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    out = _session(recognizer_graph(m.SerializeToString())).run(None, {"x": np.array([-1.0, 2.0], np.float32)})[0]
    assert out.tolist() == [0.0, 2.0]


# ---------------------------------------------------------------- detector

@pytest.fixture(scope="module")
def detector_sessions(models_dir):
    raw = (models_dir / DETECTOR).read_bytes()
    return _session(raw), _session(detector_graph(raw))


def test_detector_takes_uint8_bgr_of_any_stride_aligned_size(detector_sessions):
    _, derived = detector_sessions
    inp = derived.get_inputs()[0]
    assert inp.name == DETECTOR_INPUT and inp.type == "tensor(uint8)"
    assert inp.shape[0] == 1 and inp.shape[3] == 3 and isinstance(inp.shape[1], str) and isinstance(inp.shape[2], str)
    for h, w in ((480, 640), (256, 192), (640, 640), (96, 320)):
        outs = derived.run(None, {DETECTOR_INPUT: np.zeros((1, h, w, 3), np.uint8)})
        by_name = dict(zip((o.name for o in derived.get_outputs()), outs))
        for s in (8, 16, 32):
            assert by_name[f"cls_{s}"].shape == (1, (h // s) * (w // s), 1)
            assert by_name[f"kps_{s}"].shape == (1, (h // s) * (w // s), 10)


def test_detector_at_640_equals_the_file(detector_sessions, photo):
    raw, derived = detector_sessions
    bgr = photo("deepface_p04__2.jpg")
    canvas = np.zeros((640, 640, 3), np.uint8)
    h, w = min(640, bgr.shape[0]), min(640, bgr.shape[1])
    canvas[:h, :w] = bgr[:h, :w]
    want = raw.run(None, {raw.get_inputs()[0].name: canvas.transpose(2, 0, 1)[None].astype(np.float32)})
    got = derived.run(None, {DETECTOR_INPUT: canvas[None]})
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def _camera_frame(bgr: np.ndarray) -> np.ndarray:
    """A 640x480 frame with the photo scaled to 300 px high in the middle, like a patient at the reader."""
    from PIL import Image

    k = 300 / bgr.shape[0]
    small = np.asarray(Image.fromarray(bgr).resize((max(1, round(bgr.shape[1] * k)), 300)))[:, :640]
    frame = np.full((480, 640, 3), 110, np.uint8)
    x = (640 - small.shape[1]) // 2
    frame[90:390, x:x + small.shape[1]] = small
    return frame


def test_camera_frame_landmarks_equal_opencv(engine, photo, models_dir):
    cv2 = pytest.importorskip("cv2")
    det = cv2.FaceDetectorYN.create(str(models_dir / DETECTOR), "", (640, 480), 0.6, 0.3, 5000)
    for name in ("lfw_tony_blair__1.jpg", "bbt_sheldon__2.jpg", "deepface_p04__1.jpg"):
        frame = _camera_frame(photo(name))
        ours = engine.detect(frame)
        _, theirs = det.detect(frame)
        assert theirs is not None and len(ours) == len(theirs)
        np.testing.assert_allclose(ours[0].landmarks, theirs[0][4:14].reshape(5, 2), atol=0.05)
        np.testing.assert_allclose(ours[0].box, theirs[0][:4], atol=0.05)


def test_still_is_detected_on_the_640_canvas(engine, photo):
    bgr = photo("lfw_tony_blair__2.jpg")
    assert max(bgr.shape[:2]) < 640
    canvas = np.zeros((640, 640, 3), np.uint8)
    canvas[:bgr.shape[0], :bgr.shape[1]] = bgr
    a, b = engine.detect_still(bgr)[0], engine.detect(canvas)[0]
    np.testing.assert_array_equal(a.landmarks, b.landmarks)


# ---------------------------------------------------------------- bad files

@pytest.mark.parametrize("derive", [detector_graph, recognizer_graph])
def test_not_an_onnx_file_is_a_plain_model_error(derive):
    with pytest.raises(ModelError) as e:
        derive(b"\x08\x07garbage that is not a protobuf \xff\xff\xff")
    assert "not a readable ONNX file" in str(e.value)


def test_detector_with_two_inputs_is_refused():
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    with pytest.raises(ModelError, match="2 inputs"):
        detector_graph(helper.make_model(g).SerializeToString())
