"""``mynasim demo --method face`` as a technician runs it: the real daemon, pcscd, models, one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pcscd, pytest.mark.models, pytest.mark.slow]

MYNASIM = Path(sys.executable).with_name("mynasim")


# The CLI with the holder in front of the camera; someone else refused through the daemon is
# tests/integration/test_face_visits.py (the CLI run of it cost the suite ~27 s for no new path).
@pytest.mark.parametrize("camera,method_seen", [("holder", '"method": "face"')])
def test_face_demo(tmp_path, camera, method_seen):
    out = subprocess.run([str(MYNASIM), "demo", "--method", "face", "--camera", camera, "--quiet",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=240,
                         env=dict(os.environ, SDL_VIDEODRIVER="dummy"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "mynasim demo: PASSED" in out.stdout
    assert method_seen in out.stdout
    if camera == "other":
        assert "visit.authenticated" not in out.stdout
        assert "face_failed" in out.stdout
    assert list((tmp_path / "run" / "screens").glob("*-face_guide.png"))
