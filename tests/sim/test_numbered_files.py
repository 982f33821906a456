"""The simulated screen and speaker number their files and, for long runs, keep only the newest."""

from __future__ import annotations

from pathlib import Path

from myna_drivers.numbered_files import NumberedFiles


def _touch(files: NumberedFiles, label: str) -> Path:
    p = files.next(label)
    p.write_bytes(b"x")
    return p


def test_numbers_continue_after_an_earlier_process(tmp_path: Path) -> None:
    first = NumberedFiles(tmp_path, ".png")
    _touch(first, "idle")
    _touch(first, "reading")
    again = NumberedFiles(tmp_path, ".png")  # the daemon restarted in the same run folder
    assert _touch(again, "pin entry").name == "0003-pin_entry.png"
    assert len(list(tmp_path.iterdir())) == 3  # keep = 0: nothing is ever deleted


def test_keep_bounds_the_folder_also_across_a_restart(tmp_path: Path) -> None:
    files = NumberedFiles(tmp_path, ".wav", keep=3)
    made = [_touch(files, f"p{i}") for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in made[-3:]]
    # a new process with a smaller ring prunes what the earlier one left, then goes on numbering
    files = NumberedFiles(tmp_path, ".wav", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in made[-2:]]
    last = _touch(files, "next")
    assert last.name == "0006-next.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == [made[-1].name, last.name]
