"""One atomic writer for the whole package: whole files or none, one temporary naming, errors naming the target."""
import errno
import json
import os
from pathlib import Path

import pytest

from bcedge.atomic import (
    TEMP_SUFFIX,
    atomic_open,
    atomic_path,
    atomic_write_json,
    check_writable,
    is_temp,
    remove_stale_temps,
    temp_path,
)


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "r.json"
    atomic_write_json(target, {"n": 1})
    atomic_write_json(target, {"n": 2})
    assert json.loads(target.read_text()) == {"n": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_a_failed_block_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "r.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_temporary_names_are_hidden_recognisable_and_beside_the_target(tmp_path):
    tmp = temp_path(tmp_path / "overlay.png")
    assert tmp.parent == tmp_path and tmp.name.startswith(".overlay.png.") and tmp.name.endswith(TEMP_SUFFIX)
    assert is_temp(tmp) and not is_temp(tmp_path / "overlay.png") and temp_path(tmp_path / "x") != temp_path(tmp_path / "x")


def test_atomic_path_publishes_what_a_library_wrote_by_name(tmp_path):
    target = tmp_path / "a.bin"
    with atomic_path(target, durable=True) as tmp:
        Path(tmp).write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"


def test_errors_name_the_target_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    real_replace = os.replace

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", src)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError) as caught:
        atomic_write_json(target, {"n": 1})
    monkeypatch.setattr(os, "replace", real_replace)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert TEMP_SUFFIX not in str(caught.value) and list(tmp_path.iterdir()) == []


def test_an_error_about_another_file_is_left_alone(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_path(tmp_path / "out.bin"):
            open(tmp_path / "missing-input.png", "rb")
    assert caught.value.filename == str(tmp_path / "missing-input.png")


def test_check_writable_names_the_path_before_any_work(tmp_path):
    assert check_writable(tmp_path / "new" / "counts.json") == tmp_path / "new" / "counts.json"
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []
    (tmp_path / "afile").write_text("")
    for below_a_file in (tmp_path / "afile" / "counts.json", tmp_path / "afile" / "more" / "counts.json"):
        with pytest.raises(NotADirectoryError, match=r"cannot be written: .*afile is a file, not a folder") as caught:
            check_writable(below_a_file)
        assert TEMP_SUFFIX not in str(caught.value)
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path / "new")
    with pytest.raises(NotADirectoryError):
        check_writable(tmp_path / "afile", folder=True)


def test_remove_stale_temps_finds_every_writers_leftovers(tmp_path):
    (tmp_path / "results" / "a").mkdir(parents=True)
    stale = [temp_path(tmp_path / "results" / "a" / "x.png.json"), temp_path(tmp_path / "summary.csv")]
    for path in stale:
        path.write_text("half")
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".hidden-but-not-ours").write_text("")
    assert remove_stale_temps(tmp_path) == 2
    assert not any(p.exists() for p in stale) and (tmp_path / ".hidden-but-not-ours").exists()
