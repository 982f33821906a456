"""``mynasim gallery`` renders every state into a folder with an index."""

from __future__ import annotations

from PIL import Image

from mynad.ui.screens import SCREENS
from mynasim.gallery import SCALE, build_gallery, gallery_states


def test_gallery_builds(tmp_path):
    # two languages, normal size: the overflow test renders every language and size already
    index = build_gallery(tmp_path / "gallery", langs=("ja", "vi"), large=False)
    assert index.name == "index.html" and index.exists()
    html = index.read_text(encoding="utf-8")
    pngs = sorted((tmp_path / "gallery").glob("*.png"))
    assert len(pngs) >= len(gallery_states())
    for sid in SCREENS:
        assert f"<b>{sid}</b>" in html
        assert any(f"-{sid}" in p.name for p in pngs)
    for p in pngs[:5]:
        assert p.name in html
        img = Image.open(p)
        assert img.width >= 256 * SCALE and img.height >= 64 * SCALE
    assert "マイナ保険証を置いてください" in html and "エラーコード: 001" in html
