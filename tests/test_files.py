"""Output files are written whole or not at all, into directories checked first (gen.files)."""
import pytest

from gen.files import output_directory, replace_text, replacing


def test_replace_text_writes_the_new_text_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    replace_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        replace_text(path, b"not text")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_replacing_keeps_the_suffix_and_drops_the_file_of_a_failed_block(tmp_path):
    path = tmp_path / "arrays.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with replacing(path) as tmp:
            assert tmp.suffix == ".npz" and tmp.parent == tmp_path
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def test_output_directory_creates_the_parent_and_refuses_a_file_in_the_way(tmp_path):
    out = output_directory(tmp_path / "a" / "b" / "run", ValueError)
    assert out.parent.is_dir() and not out.exists()
    (tmp_path / "taken").write_text("keep")
    for path in (tmp_path / "taken", tmp_path / "taken" / "run"):
        with pytest.raises(ValueError, match=f"output directory {path}: {tmp_path / 'taken'} is a file"):
            output_directory(path, ValueError)
    assert (tmp_path / "taken").read_text() == "keep"
