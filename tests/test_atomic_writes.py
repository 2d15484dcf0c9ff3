"""Every file the package writes is written atomically, with the mode a normal file gets."""
import os
import re
import stat
from pathlib import Path

import pytest
import torch

from matsed_lite import files
from matsed_lite.data.desed_format import Event, write_durations, write_strong
from matsed_lite.files import atomic_path, save_torch, write_json, write_text
from matsed_lite.training import reconstruction_pretraining

PACKAGE = Path(files.__file__).parent


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_tsv_json_and_torch_files_get_a_normal_mode(tmp_path, umask022):
    write_strong(tmp_path / "s.tsv", [Event("a.wav", 0.0, 1.0, "Dog")])
    write_json(tmp_path / "r.json", {"a": 1})
    save_torch({"w": torch.ones(2)}, tmp_path / "m.pt")
    for name in ("s.tsv", "r.json", "m.pt"):
        assert _mode(tmp_path / name) == 0o644, name
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "new.txt", "x")
        assert _mode(tmp_path / "new.txt") == 0o640
    finally:
        os.umask(old)


def test_an_existing_file_keeps_its_mode(tmp_path, umask022):
    path = tmp_path / "d.tsv"
    path.write_text("old")
    os.chmod(path, 0o664)
    write_durations(path, {"a.wav": 1.0})
    assert _mode(path) == 0o664 and path.read_text().startswith("filename\tduration")


def test_an_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "context.pt"
    save_torch({"w": torch.zeros(3)}, path)
    before = path.read_bytes()

    def dies_midway(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a fi")
        raise KeyboardInterrupt  # as a kill during the write

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_torch({"w": torch.ones(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["context.pt"]


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(IsADirectoryError):
        with atomic_path(tmp_path):
            pass


def test_context_pt_is_written_through_the_atomic_writer():
    # pretrain_context saves context.pt (and recipe.json) with files.save_torch/write_json
    assert reconstruction_pretraining.save_torch is files.save_torch
    assert reconstruction_pretraining.write_json is files.write_json


def test_no_writer_bypasses_files_py():
    """The rule as a check on the source: the package writes files only through files.py
    (the wav writer renames its own temp file; explorers render PNGs into memory)."""
    pattern = re.compile(r"torch\.save\(|\.write_text\(|\.write_bytes\(|\.savefig\(|open\([^)]*['\"][wa]b?['\"]")
    allowed = {"files.py", "explorers.py"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
