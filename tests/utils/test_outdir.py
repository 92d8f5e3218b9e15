"""Output folders: only new, empty, or archkit's own artefact of the same kind."""

import json

import pytest

from archkit.io.outdir import artefact_kinds, check_out_folder


def test_new_and_empty_folders_are_fine(tmp_path):
    assert check_out_folder(tmp_path / "new", "codes folder") is False
    assert check_out_folder(tmp_path, "codes folder") is False
    (tmp_path / ".codes.tmp-123").mkdir()  # archkit's own leftover does not count
    assert check_out_folder(tmp_path, "codes folder") is False


def test_a_user_file_in_the_way_is_refused_and_kept(tmp_path):
    (tmp_path / "thesis.txt").write_text("three years")
    with pytest.raises(ValueError, match=r"--out: .* holds files archkit did not write \(thesis\.txt\), not a codes"):
        check_out_folder(tmp_path, "codes folder")
    assert (tmp_path / "thesis.txt").read_text() == "three years"
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="files archkit did not write"):
        check_out_folder(tmp_path, "codes folder")


def test_own_artefact_of_the_same_kind_only(tmp_path):
    from torch import nn

    from archkit.io import atomic_write_json, save_checkpoint

    (tmp_path / "meta.json").write_text(json.dumps({"format": "archkit-codes"}))
    assert check_out_folder(tmp_path, "codes folder") is True
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text("{}")
    assert artefact_kinds(run) == []  # a config alone is no run: the weights must be there too
    save_checkpoint(run / "vqvae", nn.Linear(2, 2), {"width": 2}, kind="VQVAE2Config")
    atomic_write_json(run / "train_config.json", {"out": str(run)})
    assert "run folder" in artefact_kinds(run)
    with pytest.raises(ValueError, match=r"holds archkit's run folder .*not a codes folder"):
        check_out_folder(run, "codes folder")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_folder(tmp_path / "file", "fit folder")
