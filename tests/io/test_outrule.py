"""The one output rule (archkit.io): marked folders, older runs by their checked content, files by a mark naming
their kind, no symlinks followed, outputs distinct, temp files unguessable and never left behind."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from archkit.io import (
    MARKER,
    artefact_kinds,
    atomic_path,
    atomic_write,
    atomic_write_json,
    check_distinct,
    check_out_file,
    check_out_folder,
    claim_out_folder,
    folder_kind,
    is_own_file,
    json_mark,
    save_checkpoint,
)
from archkit.utils import new_figure, save_figure, save_image_grid


def _checkpoint(folder, kind="Tiny"):
    save_checkpoint(folder, nn.Linear(2, 2), {"width": 2}, kind=kind)


def test_a_claimed_folder_carries_the_marker_and_only_its_kind_passes(tmp_path):
    out = tmp_path / "run"
    assert claim_out_folder(out, "sequence run") is False
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "sequence run" and marker["written_by"].startswith("archkit ")
    assert folder_kind(out) == "sequence run" and artefact_kinds(out) == ["sequence run"]
    (out / "summary.json").write_text("{}")
    assert check_out_folder(out, "sequence run") is True
    with pytest.raises(ValueError, match=r"holds archkit's sequence run .*not a fit folder"):
        check_out_folder(out, "fit folder")
    (out / MARKER).write_text(json.dumps({"written_by": "me", "kind": "sequence run"}))  # not archkit's marker
    with pytest.raises(ValueError, match="files archkit did not write"):
        check_out_folder(out, "sequence run")


@pytest.mark.parametrize(
    "name, kind",
    [("summary.json", "sequence run"), ("summary.json", "fit folder"), ("report.md", "study folder"),
     ("results.json", "study folder"), ("manifest.json", "checkpoint"), ("train_config.json", "run folder"),
     ("task.json", "long task"), ("metrics.jsonl", "sequence run")],
)  # fmt: skip
def test_a_common_name_alone_never_makes_a_folder_archkits(tmp_path, name, kind):
    (tmp_path / name).write_text('{"kind": "archkit-long-task-ish", "files": {}}')
    with pytest.raises(ValueError, match="files archkit did not write"):
        check_out_folder(tmp_path, kind)
    assert not (tmp_path / MARKER).exists()


def test_older_runs_are_recognised_by_their_checked_content(tmp_path):
    fit = tmp_path / "fit"
    _checkpoint(fit / "checkpoint", "FunctionApproximatorConfig")
    (fit / "summary.json").write_text('{"rmse": 0.1}')
    assert check_out_folder(fit, "fit folder") is True
    with pytest.raises(ValueError, match="holds archkit's fit folder"):  # a fit's model is no sequence classifier
        check_out_folder(fit, "sequence run")
    (fit / "checkpoint" / "model.safetensors").unlink()  # the manifest lists a file that is gone
    with pytest.raises(ValueError, match="files archkit did not write"):
        check_out_folder(fit, "fit folder")

    est = tmp_path / "rocket"
    est.mkdir()
    blob = pickle.dumps({"a fitted": "estimator"})
    (est / "estimator.pkl").write_bytes(blob)
    (est / "summary.json").write_text(json.dumps({"estimator_sha256": hashlib.sha256(blob).hexdigest()}))
    assert check_out_folder(est, "sequence run") is True
    claim_out_folder(est, "sequence run")  # the first claim adds the marker
    assert folder_kind(est) == "sequence run"
    (est / MARKER).unlink()
    (est / "estimator.pkl").write_bytes(blob + b"changed")
    with pytest.raises(ValueError, match="files archkit did not write"):
        check_out_folder(est, "sequence run")

    study = tmp_path / "study"
    study.mkdir()
    atomic_write_json(study / "results.json", {"rows": []})
    (study / "report.md").write_text("# study")
    with pytest.raises(ValueError, match="files archkit did not write"):  # no plot archkit marked
        check_out_folder(study, "study folder")
    fig, _ = new_figure(1, 1)
    save_figure(fig, study / "plot.png")
    assert check_out_folder(study, "study folder") is True

    run = tmp_path / "vq"
    _checkpoint(run / "vqvae", "VQVAE2Config")
    (run / "train_config.json").write_text("not json")
    assert artefact_kinds(run) == []
    atomic_write_json(run / "train_config.json", {"steps": 1})
    assert {"run folder", "demo folder"} <= set(artefact_kinds(run))


def test_symlinks_are_refused_in_and_as_the_folder(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    (tmp_path / "link").symlink_to(user)
    with pytest.raises(ValueError, match="is a symlink"):
        claim_out_folder(tmp_path / "link", "codes folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "elink").symlink_to(tmp_path / "empty")  # even to an empty folder
    with pytest.raises(ValueError, match="is a symlink"):
        claim_out_folder(tmp_path / "elink", "codes folder")
    task = tmp_path / "task"
    claim_out_folder(task, "long task")
    (task / "test" / "deep").mkdir(parents=True)
    (task / "test" / "deep" / "train").symlink_to(user)
    with pytest.raises(ValueError, match=r"holds the symlink 'test/deep/train'"):
        check_out_folder(task, "long task")
    assert sorted(os.listdir(user)) == ["keep.txt"] and os.listdir(tmp_path / "empty") == []


def test_make_task_into_its_own_folder_with_a_symlinked_train_is_refused(tmp_path):
    from archkit.data.real_tasks import write_real_task

    out = write_real_task(tmp_path / "task", "needle", 4, 4, length=256, shard_size=2)
    user = tmp_path / "user"
    user.mkdir()
    (user / "part-00009_x.npy").write_bytes(b"mine")
    import shutil

    shutil.rmtree(out / "train")
    (out / "train").symlink_to(user)
    with pytest.raises(ValueError, match="holds the symlink 'train'"):
        write_real_task(out, "needle", 8, 4, length=256, shard_size=2)
    assert os.listdir(user) == ["part-00009_x.npy"]


def test_files_carry_their_kind_and_older_marks_count_as_any(tmp_path):
    grid = save_image_grid([torch.rand(1, 3, 4, 4)], tmp_path / "g.png", kind="sample grid")
    assert is_own_file(grid, "sample grid") and not is_own_file(grid, "reconstruction grid")
    with pytest.raises(ValueError, match="is archkit's sample grid, not a reconstruction grid"):
        check_out_file(grid, "reconstruction grid")
    atomic_write_json(tmp_path / "eval.json", {**json_mark("evaluation JSON"), "rows": {}})
    check_out_file(tmp_path / "eval.json", "evaluation JSON")
    with pytest.raises(ValueError, match="not a sample grid"):
        check_out_file(tmp_path / "eval.json", "sample grid")
    # an earlier release's marks name no kind: archkit wrote them, so the same format may be written over
    atomic_write_json(tmp_path / "old.json", {"written_by": "archkit evaluate"})
    check_out_file(tmp_path / "old.json", "evaluation JSON")
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "archkit")
    Image.new("RGB", (2, 2)).save(tmp_path / "old.png", pnginfo=info)
    check_out_file(tmp_path / "old.png", "reconstruction grid")
    (tmp_path / "link.png").symlink_to(grid)  # even a link to archkit's own file is not written through
    with pytest.raises(ValueError, match="is a symlink"):
        check_out_file(tmp_path / "link.png", "sample grid")


def test_distinct_outputs_resolve_links_relative_paths_and_hard_links(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_distinct({"--out": "a.npy", "--proba": "b.npy", "--other": None})
    with pytest.raises(ValueError, match=r"--out and --proba: both name"):
        check_distinct({"--out": "a.npy", "--proba": str(tmp_path / "sub" / ".." / "a.npy")})
    (tmp_path / "real.npy").write_bytes(b"x")
    (tmp_path / "alias.npy").symlink_to(tmp_path / "real.npy")
    os.link(tmp_path / "real.npy", tmp_path / "hard.npy")
    for other in ("alias.npy", "hard.npy"):
        with pytest.raises(ValueError, match="both name"):
            check_distinct({"--out": "real.npy", "--proba": other})
    with pytest.raises(ValueError, match=r"--out: 'hard.npy' is also the input IMAGE"):
        check_distinct({"--out": "hard.npy"}, {"IMAGE": "real.npy"})


def test_temp_files_are_unguessable_exclusive_and_removed_on_error(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / ".f.json.tmp").symlink_to(victim)  # planted at the old fixed temp name
    atomic_write_json(tmp_path / "f.json", {"a": 1})
    assert victim.read_text() == "keep"

    def fail(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "g.bin", fail)
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "h.bin") as tmp:
        tmp.write_bytes(b"x")
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == [".f.json.tmp", "f.json", "victim.txt"]


def test_export_and_transform_shards_never_write_through_a_planted_link_or_leave_temp_files(tmp_path):
    from archkit.data.sequences import from_arrays
    from archkit.surgery import export_model
    from archkit.train.rocket import transform_shards

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / ".m.pt2.tmp").symlink_to(victim)
    export_model(nn.Linear(3, 2), torch.randn(1, 3), tmp_path / "m.pt2")
    assert victim.read_text() == "keep" and is_own_file(tmp_path / "m.pt2", "exported model")
    mine = tmp_path / "mine.pt2"
    mine.write_bytes(b"my model")
    with pytest.raises(ValueError, match="archkit did not write it"):
        export_model(nn.Linear(3, 2), torch.randn(1, 3), mine)
    assert mine.read_bytes() == b"my model"

    class Breaks(nn.Module):
        num_features = 2

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x, lengths=None):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("out of memory halfway")
            return x.mean(-1)

    data = from_arrays(np.zeros((6, 5, 2), np.float32), np.zeros(6, np.int64))
    (tmp_path / ".feat.npy.tmp").symlink_to(victim)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(RuntimeError, match="halfway"):
        transform_shards(Breaks(), data, "cpu", batch_size=2, out=tmp_path / "feat.npy")
    assert sorted(os.listdir(tmp_path)) == before and victim.read_text() == "keep"
    path = transform_shards(Breaks(), data, "cpu", batch_size=6, out=tmp_path / "feat.npy")
    assert np.load(path).shape == (6, 2) and victim.read_text() == "keep"
