"""The face engine with the real models: detection, alignment, matching, model and photo checks."""

from __future__ import annotations

import io
import shutil
import struct

import numpy as np
import pytest
from PIL import Image

from myna_models.cardphoto import encode_card_photo
from myna_models.errors import FaceError, ModelError, NoFace, PhotoError

pytestmark = pytest.mark.models

SAMPLES = ["lfw_tony_blair__1.jpg", "lfw_vladimir_putin__3.jpg", "bbt_sheldon__2.jpg", "biden__1.jpg",
           "deepface_p04__1.jpg", "clapton__1.jpg"]


def _card_form(engine, bgr) -> bytes:
    """What the chip holds: an ID-style portrait of the face, through encode_card_photo."""
    from myna_models.calibration import portrait_crop

    face = max(engine.detect_still(bgr), key=lambda f: f.area)
    rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    return encode_card_photo(portrait_crop(rgb, face.box))


@pytest.mark.parametrize("name", SAMPLES)
def test_detect_one_face_with_sane_landmarks(engine, photo, name):
    bgr = photo(name)
    faces = engine.detect(bgr)
    assert faces, f"no face in {name}"
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    face = max(faces, key=lambda f: f.area)
    assert face.score >= 0.6
    x, y, w, h = face.box
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    # all five points inside the (slightly enlarged) box
    assert np.all(lm[:, 0] >= x - 0.1 * w) and np.all(lm[:, 0] <= x + 1.1 * w)
    assert np.all(lm[:, 1] >= y - 0.1 * h) and np.all(lm[:, 1] <= y + 1.1 * h)
    reye, leye, nose, rmouth, lmouth = lm
    assert reye[0] < leye[0] and rmouth[0] < lmouth[0]          # subject's right is image-left
    assert max(reye[1], leye[1]) < nose[1] < min(rmouth[1], lmouth[1])
    eye_dist = np.linalg.norm(leye - reye)
    assert 0.2 * w < eye_dist < 0.8 * w


def test_detect_small_photo_is_not_upscaled_and_big_one_is_mapped_back(engine, photo):
    big = photo("deepface_p04__1.jpg")
    assert max(big.shape[:2]) > 640
    face = max(engine.detect(big), key=lambda f: f.area)
    # coordinates are in the original frame, not the 640 canvas
    assert face.box[0] + face.box[2] > 640 or face.box[1] + face.box[3] > 640


def test_align_and_embed_shapes(engine, photo):
    bgr = photo("lfw_tony_blair__1.jpg")
    face = engine.detect(bgr)[0]
    crop = engine.align(bgr, face)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    v = engine.embed_face(bgr, face)
    assert v.shape == (128,) and v.dtype == np.float32
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    assert engine.score(v, v) == pytest.approx(1.0, abs=1e-6)


GENUINE = [("lfw_tony_blair__1.jpg", "lfw_tony_blair__3.jpg"), ("lfw_vladimir_putin__1.jpg", "lfw_vladimir_putin__2.jpg"),
           ("bbt_sheldon__1.jpg", "bbt_sheldon__2.jpg"), ("deepface_p04__1.jpg", "deepface_p04__2.jpg"),
           ("lfw_donald_rumsfeld__1.jpg", "lfw_donald_rumsfeld__4.jpg")]
IMPOSTOR = [("lfw_tony_blair__1.jpg", "lfw_vladimir_putin__2.jpg"), ("bbt_sheldon__1.jpg", "bbt_raj__2.jpg"),
            ("biden__1.jpg", "lfw_donald_rumsfeld__1.jpg"), ("deepface_p04__1.jpg", "bbt_penny__1.jpg"),
            ("kit_harington__1.jpg", "clapton__1.jpg")]


@pytest.mark.parametrize("card,live", GENUINE)
def test_same_person_card_form_vs_live_matches(engine, photo, labels, card, live):
    assert labels[card] == labels[live]
    s = engine.score(engine.embed_card_photo(_card_form(engine, photo(card))), engine.embed_image(photo(live)))
    assert s >= engine.threshold, f"{card} (card) vs {live}: {s:.3f} < {engine.threshold}"


@pytest.mark.parametrize("card,live", IMPOSTOR)
def test_different_person_card_form_vs_live_does_not_match(engine, photo, labels, card, live):
    assert labels[card] != labels[live]
    s = engine.score(engine.embed_card_photo(_card_form(engine, photo(card))), engine.embed_image(photo(live)))
    assert s < engine.threshold, f"{card} (card) vs {live}: {s:.3f} >= {engine.threshold}"


def test_plain_encode_card_photo_is_accepted(engine, photo):
    jp2 = encode_card_photo(Image.open(io.BytesIO(_jpeg(photo("lfw_tony_blair__2.jpg")))))
    v = engine.embed_card_photo(jp2)
    assert v.shape == (128,)


def _jpeg(bgr) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("name", ["lfw_tony_blair__1.jpg", "bbt_penny__3.jpg", "deepface_p12__2.jpg", "biden__1.jpg"])
def test_alignment_matches_opencv(engine, photo, name):
    cv2 = pytest.importorskip("cv2")
    bgr = photo(name)
    face = max(engine.detect(bgr), key=lambda f: f.area)
    ours = engine.align(bgr, face)
    rec = cv2.FaceRecognizerSF.create(str(engine.models_dir / engine.recognizer), "")
    theirs = rec.alignCrop(bgr, face.as_row()[None])
    assert theirs.shape == ours.shape
    assert np.mean(np.abs(ours.astype(int) - theirs.astype(int))) < 1.0
    cos = engine.score(engine.embed_aligned(ours), engine.embed_aligned(theirs))
    assert cos > 0.99
    # and our embedding equals OpenCV's own feature() on its crop
    ref = rec.feature(theirs).reshape(-1)
    assert engine.score(engine.embed_aligned(theirs), ref) > 0.999


def test_similarity_transform_recovers_a_known_transform():
    from myna_models.align import TEMPLATE, similarity_transform

    ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = (TEMPLATE - t) @ np.linalg.inv(s * r).T      # so that s*R*src + t == TEMPLATE
    m = similarity_transform(src)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_no_face_raises_noface(engine):
    grey = np.full((240, 320, 3), 128, np.uint8)
    assert engine.detect(grey) == []
    with pytest.raises(NoFace):
        engine.embed_image(grey)


# ---------------------------------------------------------------- models

def test_tampered_model_is_refused(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    for f in models_dir.glob("*.onnx"):
        shutil.copy(f, tmp_path / f.name)
    rec = tmp_path / "face_recognition_sface_2021dec_int8bq_ort.onnx"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    rec.write_bytes(bytes(data))
    with pytest.raises(ModelError) as e:
        FaceEngine(tmp_path)
    assert "face_recognition_sface_2021dec_int8bq_ort.onnx" in str(e.value)
    assert "sha256" in str(e.value)


def test_missing_detector_is_refused(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    shutil.copy(models_dir / "face_recognition_sface_2021dec_int8bq_ort.onnx", tmp_path)
    with pytest.raises(ModelError, match="face_detection_yunet_2023mar.onnx"):
        FaceEngine(tmp_path)


def test_fp32_absent_is_fine_and_int8bq_is_picked(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    for name in ("face_detection_yunet_2023mar.onnx", "face_recognition_sface_2021dec_int8bq_ort.onnx"):
        shutil.copy(models_dir / name, tmp_path / name)
    e = FaceEngine(tmp_path, threads=1)
    assert e.recognizer == "face_recognition_sface_2021dec_int8bq_ort.onnx"
    assert 0.0 < e.threshold < 1.0
    # with an fp32 file present too, int8bq is still preferred (and the fp32 file is not even read)
    (tmp_path / "face_recognition_sface_2021dec.onnx").write_bytes(b"not the real model")
    assert FaceEngine(tmp_path, threads=1).recognizer == "face_recognition_sface_2021dec_int8bq_ort.onnx"


def test_fp32_is_the_fallback_and_is_verified(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    shutil.copy(models_dir / "face_detection_yunet_2023mar.onnx", tmp_path)
    (tmp_path / "face_recognition_sface_2021dec.onnx").write_bytes(b"not the real model")
    with pytest.raises(ModelError, match="face_recognition_sface_2021dec.onnx"):
        FaceEngine(tmp_path)


def test_no_recognizer_at_all(models_dir, tmp_path):
    from myna_models.engine import FaceEngine

    shutil.copy(models_dir / "face_detection_yunet_2023mar.onnx", tmp_path)
    with pytest.raises(ModelError, match="no face recognizer"):
        FaceEngine(tmp_path)


def test_unknown_recognizer_is_refused(models_dir):
    from myna_models.engine import FaceEngine

    with pytest.raises(ModelError, match="not listed"):
        FaceEngine(models_dir, recognizer="some_other_model.onnx")


def test_manifest_lists_fp32_as_uncalibrated_alternative():
    from myna_models.manifest import load_manifest

    man = load_manifest()
    fp32 = man.entry("face_recognition_sface_2021dec.onnx")
    assert fp32.role == "recognizer"
    assert fp32.sha256 == "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    assert fp32.threshold is not None and fp32.threshold_calibrated is False
    assert man.by_role("recognizer")[0].file == "face_recognition_sface_2021dec_int8bq_ort.onnx"


def test_manifest_write_round_trips(tmp_path):
    import tomllib

    from myna_models.manifest import DEFAULT_MANIFEST, load_manifest, update_threshold

    p = tmp_path / "manifest.toml"
    shutil.copy(DEFAULT_MANIFEST, p)
    update_threshold(p, "face_recognition_sface_2021dec_int8bq_ort.onnx",
                     {"value": 0.5, "calibrated_on": 'a "quoted" dir\\x', "fnmr_at_fmr_1e-3": 0.01, "date": "2026-01-01"})
    data = tomllib.loads(p.read_text())
    assert data["threshold"]["value"] == 0.5 and data["threshold"]["calibrated"] is True
    assert data["threshold"]["calibrated_on"] == 'a "quoted" dir\\x'
    assert load_manifest(p).threshold_for("face_recognition_sface_2021dec_int8bq_ort.onnx") == (0.5, True)
    update_threshold(p, "face_recognition_sface_2021dec.onnx", {"value": 0.4, "date": "2026-01-02"})
    assert load_manifest(p).threshold_for("face_recognition_sface_2021dec.onnx") == (0.4, True)


# ---------------------------------------------------------------- card photo bombs

def _j2k_header(w: int, h: int) -> bytes:
    """A raw J2K codestream start (SOC + SIZ) announcing w x h, one 8-bit component, then junk."""
    siz = struct.pack(">HIIIIIIIIH", 0, w, h, 0, 0, w, h, 0, 0, 1) + bytes([7, 1, 1])
    return b"\xff\x4f\xff\x51" + struct.pack(">H", len(siz) + 2) + siz + b"\x00" * 64


def _jp2_box_header(w: int, h: int) -> bytes:
    """A JP2 file whose ihdr box announces w x h."""
    sig = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    ftyp = struct.pack(">I", 20) + b"ftypjp2 " + b"\x00\x00\x00\x00" + b"jp2 "
    ihdr = struct.pack(">I", 22) + b"ihdr" + struct.pack(">IIHBBBB", h, w, 1, 7, 7, 0, 0)
    jp2h = struct.pack(">I", 8 + len(ihdr)) + b"jp2h" + ihdr
    code = _j2k_header(w, h)
    jp2c = struct.pack(">I", 8 + len(code)) + b"jp2c" + code
    return sig + ftyp + jp2h + jp2c


@pytest.mark.parametrize("blob", [
    b"", b"not an image at all", b"\x00" * 1000, b"\xff\xd8\xff\xe0" + b"\x00" * 100,  # JPEG magic, junk
    b"\xff\x4f\xff\x51\x00\x05garbage",
])
def test_card_photo_not_an_image(engine, blob):
    with pytest.raises(PhotoError):
        engine.embed_card_photo(blob)


@pytest.mark.parametrize("make", [_j2k_header, _jp2_box_header])
@pytest.mark.parametrize("size", [(20000, 20000), (1200, 1200), (100000, 10)])
def test_card_photo_bomb_rejected_fast(engine, make, size, monkeypatch):
    """Refused from the header alone: the pixels are never decoded (no time spent, no memory)."""
    from PIL import Image

    def no_decoding(*a, **k):
        raise AssertionError("the bomb's pixels were decoded")

    monkeypatch.setattr(Image.core, "jpeg2k_decoder", no_decoding)
    blob = make(*size)
    with pytest.raises(PhotoError) as e:
        engine.embed_card_photo(blob)
    assert isinstance(e.value, FaceError) and str(e.value) == e.value.message


def test_card_photo_too_many_bytes(engine):
    with pytest.raises(PhotoError, match="too large"):
        engine.embed_card_photo(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * (1 << 20))


def test_card_photo_other_formats_rejected(engine, photo):
    # the chip holds JPEG 2000; other decoders are not exposed to card data
    with pytest.raises(PhotoError):
        engine.embed_card_photo(_jpeg(photo("lfw_tony_blair__1.jpg")))


def test_card_photo_without_face(engine):
    out = io.BytesIO()
    Image.new("L", (180, 240), 128).save(out, "JPEG2000")
    with pytest.raises(NoFace):
        engine.embed_card_photo(out.getvalue())
