"""Single output files: written over only when archkit wrote them (its mark), never a user's file."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from archkit.cli.main import cli
from archkit.io import atomic_write_json, check_out_file, is_own_file
from archkit.utils import new_figure, save_figure, save_image_grid


def test_archkits_pngs_carry_its_mark_and_a_users_do_not(tmp_path):
    grid = save_image_grid([torch.rand(2, 3, 4, 4)], tmp_path / "grid.png", kind="sample grid")
    fig, _ = new_figure(1, 1)
    plot = save_figure(fig, tmp_path / "plot.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "holiday.png")
    assert is_own_file(grid) and is_own_file(plot)
    assert not is_own_file(tmp_path / "holiday.png")
    check_out_file(grid, "sample grid")  # passes: archkit's own, of the same kind
    with pytest.raises(ValueError, match=r"is archkit's sample grid, not a reconstruction grid"):
        check_out_file(grid, "reconstruction grid")
    with pytest.raises(ValueError, match=r"--out: .*holiday\.png' already exists and archkit did not write it"):
        check_out_file(tmp_path / "holiday.png", "sample grid")


def test_json_npy_folders_and_new_paths(tmp_path):
    atomic_write_json(tmp_path / "eval.json", {"written_by": "archkit evaluate", "rows": {}})
    (tmp_path / "mine.json").write_text(json.dumps({"rows": {}}))
    np.save(tmp_path / "pred.npy", np.arange(3))
    assert is_own_file(tmp_path / "eval.json") and not is_own_file(tmp_path / "mine.json")
    assert not is_own_file(tmp_path / "pred.npy")  # .npy carries no mark: never written over
    check_out_file(tmp_path / "new.png", "sample grid")
    with pytest.raises(ValueError, match="is a folder"):
        check_out_file(tmp_path, "sample grid")


def test_pt2_export_is_marked(tmp_path):
    from archkit.surgery import export_model

    out = export_model(nn.Linear(3, 2), torch.randn(1, 3), tmp_path / "m.pt2")
    assert is_own_file(out.path)
    (tmp_path / "other.pt2").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip someone else wrote
    assert not is_own_file(tmp_path / "other.pt2")


def test_sample_and_predict_refuse_a_users_file_before_any_work(tmp_path):
    run = tmp_path / "run"
    run.mkdir()  # no priors or checkpoint: the output check comes first, so nothing is loaded
    photo = tmp_path / "samples.png"
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(photo)
    before = photo.read_bytes()
    res = CliRunner().invoke(cli, ["sample", "--run", str(run), "--out", str(photo)])
    assert res.exit_code == 2 and "archkit did not write it" in res.output, res.output
    np.save(tmp_path / "labels.npy", np.arange(4))
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 2), np.float32))
    res = CliRunner().invoke(
        cli,
        ["seq", "predict", "--run", str(run), "--x", str(tmp_path / "x.npy"), "--out", str(tmp_path / "labels.npy")],
    )
    assert res.exit_code == 2 and "labels.npy' already exists" in res.output, res.output
    res = CliRunner().invoke(
        cli,
        ["seq", "predict", "--run", str(run), "--x", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy"),
         "--proba", str(tmp_path / "labels.npy")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--proba: " in res.output and "probabilities" in res.output, res.output
    assert photo.read_bytes() == before and np.array_equal(np.load(tmp_path / "labels.npy"), np.arange(4))
