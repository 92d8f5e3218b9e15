"""Random folder and file states against the output rule, and random tampering of the files archkit reads:
always the rule's answer or one ValueError-style line, never a traceback, never a changed user file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from archkit.io import (
    MARKER,
    check_distinct,
    check_out_file,
    check_out_folder,
    claim_out_folder,
    json_mark,
    load_weights,
    read_config,
    save_checkpoint,
)
from archkit.io.outdir import KINDS

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
USER_NAMES = ["summary.json", "report.md", "results.json", "train_config.json", "meta.json", "task.json",
              "manifest.json", "config.json", "notes.txt", "estimator.pkl", "metrics.jsonl", "plot.png"]  # fmt: skip
USER_TEXT = st.sampled_from(["{}", "x", '{"kind": "mine"}', '{"files": {}}', "# my report", '{"format": "mine"}'])
# legacy template -> the kinds a folder written by the previous release (no marker) is recognised as
LEGACY = {
    "fit": {"fit folder"},
    "lstm": {"sequence run"},
    "vq": {"run folder", "demo folder"},
    "codes": {"codes folder"},
    "checkpoint": {"checkpoint"},
    "task": {"long task"},
}
ALSO = {"demo folder": {"run folder"}}


def _ckpt(folder: Path, kind: str) -> None:
    save_checkpoint(folder, nn.Linear(2, 2), {"width": 2}, kind=kind)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("templates")
    _ckpt(root / "fit" / "checkpoint", "FunctionApproximatorConfig")
    (root / "fit" / "summary.json").write_text('{"rmse": 1}')
    _ckpt(root / "lstm" / "checkpoint", "SequenceClassifierConfig")
    _ckpt(root / "vq" / "vqvae", "VQVAE2Config")
    (root / "vq" / "train_config.json").write_text('{"steps": 1}')
    (root / "codes").mkdir()
    (root / "codes" / "meta.json").write_text('{"format": "archkit-codes"}')
    _ckpt(root / "checkpoint", "Tiny")
    (root / "task").mkdir()
    (root / "task" / "task.json").write_text('{"kind": "archkit-long-task"}')
    return root


def _snapshot(root: Path) -> dict[str, object]:
    state: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            key = str(p.relative_to(root))
            state[key] = ("link", os.readlink(p)) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
    return state


folder_states = st.fixed_dictionaries(
    {
        "legacy": st.sampled_from([None, *LEGACY]),
        "marker": st.sampled_from([None, "forged", "corrupt", "unknown kind", *KINDS]),
        "user": st.lists(st.tuples(st.sampled_from(USER_NAMES), USER_TEXT), max_size=4),
        "link": st.sampled_from([None, None, "self", "inner file", "inner folder", "dangling"]),
    }
)


@SETTINGS
@given(state=folder_states, kind=st.sampled_from(KINDS))
def test_random_folder_states_get_the_rules_answer_and_stay_unchanged(templates, state, kind):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        outside = root / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("mine")
        real = root / "real"
        if state["legacy"]:
            shutil.copytree(templates / state["legacy"], real)
        real.mkdir(exist_ok=True)
        for name, text in state["user"]:
            if not (real / name).exists():  # a template's own files stay as archkit wrote them
                (real / name).write_text(text)
        marker = {
            None: None,
            "forged": {"written_by": "someone else", "kind": kind},
            "corrupt": "{",
            "unknown kind": {"written_by": "archkit 0.1.0", "kind": "photo album"},
        }.get(state["marker"], {"written_by": "archkit 0.1.0", "kind": state["marker"]})
        if marker is not None:
            (real / MARKER).write_text(marker if isinstance(marker, str) else json.dumps(marker))
        link = state["link"]
        target = real
        if link == "self":
            target = root / "link"
            target.symlink_to(real)
        elif link == "inner file":
            (real / "train").symlink_to(outside / "keep.txt")
        elif link == "inner folder":
            (real / "deep").mkdir()
            (real / "deep" / "train").symlink_to(outside)
        elif link == "dangling":
            (real / "gone").symlink_to(root / "nothing")
        before = _snapshot(root)

        valid = state["marker"] in KINDS
        empty = not os.listdir(real)
        if link:
            expected: object = ValueError
        elif empty:
            expected = False
        elif valid:
            expected = True if kind == state["marker"] or kind in ALSO.get(state["marker"], ()) else ValueError
        else:
            expected = True if kind in LEGACY.get(state["legacy"], ()) else ValueError
        for check in (check_out_folder, claim_out_folder):
            try:
                got: object = check(target, kind, "--out")
            except ValueError as e:
                got = ValueError
                assert "\n" not in str(e) and str(e).startswith("--out: ")
            assert got == expected, (state, kind, got)
            after = _snapshot(root)
            if check is claim_out_folder and got is not ValueError and not valid:
                assert json.loads(after.pop(f"real/{MARKER}"))["kind"] == kind  # type: ignore[arg-type]
                before.pop(f"real/{MARKER}", None)
                after.pop(f"real/{MARKER}", None)
            assert after == before


file_states = st.sampled_from(
    ["new", "user bytes", "user json", "own same kind", "own other kind", "own no kind", "forged json",
     "link to own", "folder"]
)  # fmt: skip


@SETTINGS
@given(state=file_states, suffix=st.sampled_from([".json", ".png", ".npy"]))
def test_random_file_states_get_the_rules_answer_and_stay_unchanged(state, suffix):
    from PIL import Image, PngImagePlugin

    def own(path: Path, kind: str | None) -> None:
        if suffix == ".json":  # an earlier release's mark names no kind
            path.write_text(json.dumps(json_mark(kind) if kind else {"written_by": "archkit evaluate"}))
        elif suffix == ".png":
            info = PngImagePlugin.PngInfo()
            info.add_text("Software", "archkit")
            if kind:
                info.add_text("archkit-kind", kind)
            Image.new("RGB", (2, 2)).save(path, pnginfo=info)
        else:
            np.save(path, np.arange(3))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / f"out{suffix}"
        if state == "user bytes":
            path.write_bytes(b"\x00my bytes")
        elif state == "user json":
            path.write_text('{"written_by": "me"}')
        elif state == "forged json":
            path.write_text('{"writtenby": "archkit"}')
        elif state.startswith("own"):
            own(path, {"own same kind": "evaluation JSON", "own other kind": "sample grid"}.get(state))
        elif state == "link to own":
            own(root / f"real{suffix}", "evaluation JSON")
            path.symlink_to(root / f"real{suffix}")
        elif state == "folder":
            path.mkdir()
        before = _snapshot(root)
        ok = state == "new" or (suffix != ".npy" and state in ("own same kind", "own no kind"))
        try:
            check_out_file(path, "evaluation JSON", "--out")
            got = True
        except ValueError as e:
            got = False
            assert "\n" not in str(e) and str(e).startswith("--out: ")
        assert got == ok, (state, suffix)
        assert _snapshot(root) == before


@SETTINGS
@given(a=st.sampled_from(["a", "./a", "sub/../a", "link", "hard", "b", "new"]), b=st.sampled_from(["a", "b", "new"]))
def test_distinct_outputs_are_the_same_file_exactly_when_they_resolve_to_it(a, b):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sub").mkdir()
        (root / "a").write_bytes(b"a")
        (root / "b").write_bytes(b"b")
        (root / "link").symlink_to(root / "a")
        os.link(root / "a", root / "hard")
        same = {"a": "a", "./a": "a", "sub/../a": "a", "link": "a", "hard": "a", "b": "b", "new": "new"}
        try:
            check_distinct({"--out": root / a, "--proba": root / b})
            assert same[a] != b
        except ValueError as e:
            assert same[a] == b and "\n" not in str(e)


# ----- tampering with what archkit reads: config, manifest, weights, task.json, shard lengths

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _tamper_json(obj: object, data: st.DataObject) -> object:
    """Replace, drop or add one value somewhere in obj (a JSON value)."""
    if isinstance(obj, dict) and obj and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(obj)))
        action = data.draw(st.sampled_from(["replace", "drop", "descend"]))
        if action == "drop":
            return {k: v for k, v in obj.items() if k != key}
        new = _tamper_json(obj[key], data) if action == "descend" else data.draw(json_values)
        return {**obj, key: new}
    return data.draw(json_values)


def _tamper_bytes(raw: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if how == "truncate":
        return raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    if how == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
    return data.draw(st.binary(max_size=64))


def _one_line_or(result_ok, call):
    try:
        return result_ok(call())
    except (ValueError, OSError) as e:  # what the CLI shows as one line, exit 2
        assert str(e) and "\n" not in str(e), repr(e)
        return True


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["config.json", "manifest.json", "model.safetensors"]))
def test_a_tampered_checkpoint_reads_correctly_or_fails_in_one_line(data, name):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ck"
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        save_checkpoint(folder, model, {"width": 3}, kind="Tiny", step=5)
        original = read_config(folder)
        path = folder / name
        raw = path.read_bytes()
        if name.endswith(".json") and data.draw(st.booleans()):
            path.write_text(json.dumps(_tamper_json(json.loads(raw), data)))
        else:
            path.write_bytes(_tamper_bytes(raw, data))
        assert _one_line_or(lambda cfg: cfg == original, lambda: read_config(folder))
        fresh = nn.Linear(3, 2)
        same = lambda m: all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), model.state_dict().values()))  # noqa: E731
        assert _one_line_or(same, lambda: load_weights(folder, fresh))


@SETTINGS
@given(data=st.data())
def test_a_tampered_task_json_is_recognised_or_refused_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        task = {"kind": "archkit-long-task", "task": "needle", "n_train": 8}
        tampered = _tamper_json(task, data)
        (folder / "task.json").write_text(json.dumps(tampered))
        ours = isinstance(tampered, dict) and tampered.get("kind") == "archkit-long-task"
        try:
            assert check_out_folder(folder, "long task") is True and ours
        except ValueError as e:
            assert not ours and "\n" not in str(e)


lengths_values = st.one_of(
    st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=6).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.floats(allow_nan=True), min_size=4, max_size=4).map(lambda v: np.array(v, dtype=np.float64)),
    st.lists(st.integers(0, 12), min_size=4, max_size=4).map(lambda v: np.array(v, dtype=np.int64)),
    st.just(np.zeros((4, 1), np.int64)),
)


@SETTINGS
@given(lengths=lengths_values, garble=st.booleans())
def test_tampered_shard_lengths_read_correctly_or_fail_in_one_line(lengths, garble):
    import warnings

    from archkit.data.sequences import open_shards

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "a_x.npy", np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2))
        np.save(folder / "a_y.npy", np.array([0, 1, 0, 1]))
        np.save(folder / "a_lengths.npy", lengths)
        if garble:
            raw = (folder / "a_lengths.npy").read_bytes()
            (folder / "a_lengths.npy").write_bytes(raw[: len(raw) // 2])

        def read() -> list:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a skipped shard is named in a warning, then "no readable shards"
                data = open_shards(folder)
            return [lb for _, _, lb in data.batches(2, shuffle=False)]

        def correct(batches: list) -> bool:
            got = np.concatenate([np.asarray(lb) for lb in batches])
            return bool(np.array_equal(got, lengths) and np.all((got >= 1) & (got <= 6)))

        assert _one_line_or(correct, read)
