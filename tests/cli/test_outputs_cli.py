"""Every output option of the CLI, found in click's own command tree, against a user's file, a user's folder,
a symlink and a collision: exit 2, one line, and the user's files byte for byte unchanged.

An option is an output when its type is a click.Path or its name has a part such as out/proba/save/dest,
and it is not listed in INPUTS: a new command's output option fails `test_every_output_option_is_covered`
until it gets a row in OUTPUTS (and so the four checks below).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from archkit.cli.main import cli

OUTPUT_WORDS = {"out", "output", "proba", "save", "dest", "destination", "write", "export", "dump", "report", "plot"}

SURGERY_OPS = ("compare", "decompose", "freeze", "fuse", "lowrank", "replace-norm", "selu")
# (command path, option name): Path options that are read, never written
INPUTS = {
    ("evaluate", "run"),  # eval.json goes into the run only when --out is not given
    ("export", "run_dir"),
    ("fit", "csv_path"),
    ("prior train", "codes"),
    ("prior train", "run"),  # the priors join the run's own checkpoints
    ("sample", "run"),
    ("seq evaluate", "run_dir"),
    ("seq evaluate", "shards"),
    ("seq evaluate", "x_path"),
    ("seq evaluate", "y_path"),
    ("seq predict", "shards"),
    ("seq predict", "run_dir"),
    ("seq predict", "x_path"),
    ("seq train", "x_path"),
    ("seq train", "y_path"),
    ("seq train", "shards"),
    ("seq train", "test_shards"),
    ("surgery compare", "candidate"),
    *((f"surgery {op}", "checkpoint") for op in SURGERY_OPS),
    ("vqvae encode", "run_dir"),
    ("vqvae reconstruct", "run_dir"),
    ("vqvae reconstruct", "images"),
}


@dataclass
class Output:
    """How to call a command so that `target` is the output under test (inputs are tiny or empty stand-ins)."""

    folder: bool  # the option names a folder (else a file)
    argv: Callable[[Path, Path], list[str]]  # (inputs folder, target) -> arguments
    suffix: str = ""  # a file output's suffix
    collide: Callable[[Path], tuple[list[str], Path]] | None = None  # inputs -> (arguments, the user's file at stake)


def _run(tmp: Path) -> str:
    return str(tmp / "run")  # an existing, empty folder: the output check comes before anything is read


def _predict_collision(tmp: Path) -> tuple[list[str], Path]:
    x = tmp / "x.npy"
    return [
        "seq",
        "predict",
        "--run",
        _run(tmp),
        "--x",
        str(x),
        "--out",
        str(tmp / "p.npy"),
        "--proba",
        str(tmp / "." / "p.npy"),
    ], x


def _reconstruct_collision(tmp: Path) -> tuple[list[str], Path]:
    photo = tmp / "photo.png"
    return [
        "vqvae",
        "reconstruct",
        "--run",
        _run(tmp),
        str(photo),
        "--out",
        str(tmp / "sub" / ".." / "photo.png"),
    ], photo


def _surgery(op: str) -> Output:
    return Output(
        True,
        lambda tmp, t: ["surgery", op, "--model", "resnet-digits", "--out", str(t)],
        collide=lambda tmp: (
            ["surgery", op, "--checkpoint", str(tmp / "ckpt"), "--out", str(tmp / "ckpt")],
            tmp / "ckpt" / "notes.txt",
        ),
    )


OUTPUTS: dict[tuple[str, str], Output] = {
    ("demo", "out"): Output(True, lambda tmp, t: ["demo", "--out", str(t)]),
    ("evaluate", "out"): Output(False, lambda tmp, t: ["evaluate", "--run", _run(tmp), "--out", str(t)], ".json"),
    ("export", "out"): Output(False, lambda tmp, t: ["export", "--run", _run(tmp), "--out", str(t)], ".onnx"),
    ("fit", "out_dir"): Output(True, lambda tmp, t: ["fit", "--expr", "x", "--domain", "x=-1:1", "--out", str(t)]),
    ("sample", "out"): Output(False, lambda tmp, t: ["sample", "--run", _run(tmp), "--out", str(t)], ".png"),
    ("seq evaluate", "out_dir"): Output(
        True,
        lambda tmp, t: [
            "seq",
            "evaluate",
            "--run",
            _run(tmp),
            "--x",
            str(tmp / "x.npy"),
            "--y",
            str(tmp / "y.npy"),
            "--out",
            str(t),
        ],
    ),
    ("seq make-task", "out_dir"): Output(True, lambda tmp, t: ["seq", "make-task", "needle", "--out", str(t)]),
    ("seq predict", "out_path"): Output(
        False,
        lambda tmp, t: ["seq", "predict", "--run", _run(tmp), "--x", str(tmp / "x.npy"), "--out", str(t)],
        ".npy",
        _predict_collision,
    ),
    ("seq predict", "proba_path"): Output(
        False,
        lambda tmp, t: [
            "seq",
            "predict",
            "--run",
            _run(tmp),
            "--x",
            str(tmp / "x.npy"),
            "--out",
            str(tmp / "pred.npy"),
            "--proba",
            str(t),
        ],
        ".npy",
        lambda tmp: (
            [
                "seq",
                "predict",
                "--run",
                _run(tmp),
                "--x",
                str(tmp / "x.npy"),
                "--out",
                str(tmp / "p.npy"),
                "--proba",
                str(tmp / "x.npy"),
            ],
            tmp / "x.npy",
        ),
    ),
    ("seq train", "out_dir"): Output(
        True, lambda tmp, t: ["seq", "train", "--x", str(tmp / "x.npy"), "--y", str(tmp / "y.npy"), "--out", str(t)]
    ),
    ("study", "out_dir"): Output(True, lambda tmp, t: ["study", "quantizers", "--out", str(t)]),
    **{(f"surgery {op}", "out"): _surgery(op) for op in SURGERY_OPS if op != "compare"},
    ("vqvae encode", "out"): Output(
        True,
        lambda tmp, t: ["vqvae", "encode", "--run", _run(tmp), "--out", str(t)],
        collide=lambda tmp: (
            ["vqvae", "encode", "--run", str(tmp / "ckpt"), "--out", str(tmp / "ckpt")],
            tmp / "ckpt" / "notes.txt",
        ),
    ),
    ("vqvae reconstruct", "out"): Output(
        False,
        lambda tmp, t: ["vqvae", "reconstruct", "--run", _run(tmp), str(tmp / "photo.png"), "--out", str(t)],
        ".png",
        _reconstruct_collision,
    ),
    ("vqvae train", "out"): Output(True, lambda tmp, t: ["vqvae", "train", "--out", str(t)]),
}
# --model rocket|auto runs check their folder on their own path: the same four checks for them
EXTRA = {
    ("seq train --model rocket", "out_dir"): Output(
        True,
        lambda tmp, t: [
            "seq",
            "train",
            "--model",
            "rocket",
            "--x",
            str(tmp / "x.npy"),
            "--y",
            str(tmp / "y.npy"),
            "--out",
            str(t),
        ],
    )
}


def _params() -> list[tuple[str, click.Parameter]]:
    found = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            found.extend((" ".join(path), p) for p in cmd.params)

    walk(cli, [])
    return found


def _is_output_like(p: click.Parameter) -> bool:
    words = {w for name in [p.name or "", *p.opts] for w in re.split(r"[-_]+", name.lower()) if w}
    return isinstance(p.type, click.Path) or bool(words & OUTPUT_WORDS)


def test_every_output_option_is_covered():
    seen = {(cmd, p.name) for cmd, p in _params() if _is_output_like(p)}
    assert len(seen) > 20  # the walk reached the lazily loaded commands
    unclassified = sorted(seen - INPUTS - set(OUTPUTS))
    assert not unclassified, (
        f"new output-like options: give each a row in OUTPUTS (or INPUTS if only read): {unclassified}"
    )
    assert not set(OUTPUTS) - seen, f"stale rows: {sorted(set(OUTPUTS) - seen)}"
    for key, out in OUTPUTS.items():  # the table agrees with click on file vs folder
        param = {p.name: p for cmd, p in _params() if cmd == key[0]}[key[1]]
        assert isinstance(param.type, click.Path) and param.type.dir_okay == out.folder, key


def _inputs(tmp: Path) -> Path:
    """Tiny stand-in inputs and a user's area whose files must survive every call."""
    (tmp / "run").mkdir()
    np.save(tmp / "x.npy", np.zeros((4, 8, 2), np.float32))
    np.save(tmp / "y.npy", np.array([0, 1, 0, 1]))
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp / "photo.png")
    (tmp / "ckpt").mkdir()
    (tmp / "ckpt" / "notes.txt").write_text("my checkpoint notes")
    user = tmp / "user"
    user.mkdir()
    for name, text in {
        "summary.json": '{"mine": 1}',
        "report.md": "# my report",
        "notes.txt": "three years",
        "task.json": '{"kind": "mine"}',
        "train_config.json": "{}",
    }.items():
        (user / name).write_text(text)
    (tmp / "empty_user_folder").mkdir()
    return user


def _snapshot(tmp: Path) -> dict[str, bytes | str]:
    state: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(tmp):
        for name in dirs + files:
            p = Path(root, name)
            rel = str(p.relative_to(tmp))
            if p.is_symlink():
                state[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                state[rel] = p.read_bytes()
            else:
                state[rel] = "dir"
    return state


def _user_file(tmp: Path, suffix: str) -> Path:
    path = tmp / f"mine{suffix or '.txt'}"
    path.write_bytes(b"\x89PNG but really my own bytes" if suffix == ".png" else b'{"my": "data"}')
    return path


def _cases() -> list:
    cases = []
    for key, out in {**OUTPUTS, **EXTRA}.items():
        for case in ("user file", "user folder", "symlink", "inner symlink" if out.folder else None, "collision"):
            if case is None or (case == "collision" and out.collide is None):
                continue
            cases.append(pytest.param(key, case, id=f"{key[0]} {key[1]} {case}"))
    return cases


@pytest.mark.parametrize("key, case", _cases())
def test_a_users_files_are_never_written_over(tmp_path, key, case):
    out = {**OUTPUTS, **EXTRA}[key]
    user = _inputs(tmp_path)
    if case == "user file":
        target = _user_file(tmp_path, out.suffix)
    elif case == "user folder":
        target = user if out.folder else tmp_path / f"folder{out.suffix}"
        if not out.folder:
            target.mkdir()
            (target / "notes.txt").write_text("mine")
    elif case == "symlink":
        target = tmp_path / f"link{out.suffix}"
        target.symlink_to(tmp_path / "empty_user_folder" if out.folder else _user_file(tmp_path, out.suffix))
    elif case == "inner symlink":  # an otherwise empty folder whose train/ (say) leads to the user's folder
        target = tmp_path / "new"
        target.mkdir()
        (target / "train").symlink_to(user)
    else:
        assert out.collide is not None
        argv, _ = out.collide(tmp_path)
    if case != "collision":
        argv = out.argv(tmp_path, target)
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(cli, argv)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    option = "--proba" if key[1] == "proba_path" else "--out"
    # the refusal is about the output itself ("--out: ...", "--out and --proba: ...", click's "'--out': ..."),
    # not some other failure that merely mentions it
    assert re.search(rf"{option}'?(:| and )", lines[0]), lines[0]
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed, nothing left behind
