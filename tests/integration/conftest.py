"""The whole device: the real daemon against hw-sim, through the real pcscd and a pty pair."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mynasim.rig import SimRig


def _need(exe: str) -> None:
    if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists():
        pytest.fail(f"{exe} is not installed: run scripts/setup.sh")


def running_rig(folder, **overrides):
    """A started rig; at the end the daemon must exit cleanly and its log hold no traceback."""
    _need("pcscd")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    # no speaker unless a test asks for one: spoken prompts are tested where they matter
    # (test_languages.py, the demo), and synthesis elsewhere only costs the suite CPU time
    overrides.setdefault("voice", {"backend": "none"})
    r = SimRig(folder, overrides=overrides or None, echo=bool(os.environ.get("MYNA_ECHO")))
    r.start()
    yield r
    code = r.stop_daemon()
    log = "\n".join(r.log_lines)
    r.close()
    assert code == 0, f"mynad exited with {code}"
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> SimRig:
    yield from running_rig(tmp_path_factory.mktemp("rig"))
