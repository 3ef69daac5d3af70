"""Stored paths resolve inside the data directory or not at all: a bad row never deletes another file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.storage import OutsideDataDir, remove_stored_files, reports_dir, school_rubric_dir, stored_path


def test_a_stored_path_resolves_inside_the_data_directory_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    report = reports_dir(data_dir) / "class-1.xlsx"
    report.parent.mkdir(parents=True)
    report.write_bytes(b"x")
    assert stored_path(data_dir, "reports/class-1.xlsx") == report.resolve()
    assert stored_path(data_dir, str(report)) == report.resolve()
    assert school_rubric_dir(data_dir, 7) == data_dir / "rubrics" / "7"
    for outside in ("../secret.txt", str(tmp_path / "secret.txt"), "reports/../../secret.txt", "/etc/passwd"):
        with pytest.raises(OutsideDataDir):
            stored_path(data_dir, outside)


def test_removing_stored_files_keeps_what_lies_outside(tmp_path: Path) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "big-disk"
    elsewhere.mkdir()
    data_dir.mkdir()
    (data_dir / "reports").symlink_to(elsewhere)  # reports on another volume, linked in
    inside, linked, secret = data_dir / "a.xlsx", elsewhere / "b.xlsx", tmp_path / "secret.txt"
    for path in (inside, linked, secret):
        path.write_bytes(b"x")
    removed = remove_stored_files(data_dir, [str(inside), "reports/b.xlsx", str(secret), "../secret.txt", "x.xlsx"])
    assert removed == 2 and not inside.exists() and not linked.exists()
    assert secret.is_file()
