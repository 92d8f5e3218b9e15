"""Fuzz of the files archkit reads and the numbers users type: every outcome is a result (exit 0) or one
clear line (exit 2); never a traceback, never a deleted file.

`make test` runs a few derandomized examples per target; `make test-slow` (ARCHKIT_FUZZ_EXAMPLES or the
slow-marked tests) runs many more.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archkit.cli.main import cli
from archkit.data import load_digits, write_image_folder
from archkit.train import VQVAETrainConfig, encode_dataset, train_vqvae

FEW = int(os.environ.get("ARCHKIT_FUZZ_EXAMPLES", "6"))
_SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
ODD = [None, True, 0, -1, 7, 1e308, math.nan, math.inf, "x", "", [], [1, 2], {}, {"a": 1}]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 2-step VQ-VAE on 40 digits (16x16 PNGs), encoded, with a user's file in the run folder."""
    x, y = load_digits("train", image_size=16)
    data = write_image_folder(x[:40], tmp_path_factory.mktemp("digits"), labels=y[:40])
    run = tmp_path_factory.mktemp("run") / "run"
    cfg = dict(
        image_size=16,
        hidden_channels=8,
        res_blocks=0,
        res_channels=4,
        code_dim=4,
        num_codes=8,
        batch_size=8,
        restart_after=0,
        workers=0,
    )
    train_vqvae(VQVAETrainConfig(out=str(run), data=str(data), steps=1, eval_every=1, **cfg), progress=False)
    encode_dataset(run, workers=0)
    (run / "notes.txt").write_text("the user's")
    return run


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        yield from _paths(v, (*prefix, k))


def _mutate(obj, path, value, delete):
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def _check(res, sentinel):
    assert res.exit_code in (0, 2), (res.exit_code, res.output, repr(res.exception))
    if res.exit_code:
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output, res.output
    assert sentinel.read_text() == "the user's"


def _fuzz_file(base, tmp_path_factory, data, name, command):
    work = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(base, work)
    path = work / name
    doc = json.loads(path.read_text())
    paths = [p for p, _ in _paths(doc)]
    target = data.draw(st.sampled_from(paths), label="field")
    value = data.draw(st.sampled_from(ODD), label="value")
    delete = data.draw(st.booleans(), label="delete")
    path.write_text(json.dumps(_mutate(doc, target, value, delete)))
    _check(CliRunner().invoke(cli, command(work)), work / "notes.txt")


PRIOR = [
    "--steps",
    "1",
    "--batch-size",
    "4",
    "--eval-every",
    "1",
    "--channels",
    "4",
    "--layers",
    "1",
    "--device",
    "cpu",
    "--quiet",
]
TARGETS = {
    "vqvae/config.json": lambda run: ["vqvae", "encode", "--run", str(run), "--workers", "0", "--device", "cpu"],
    "vqvae/manifest.json": lambda run: ["vqvae", "encode", "--run", str(run), "--workers", "0", "--device", "cpu"],
    "train_config.json": lambda run: ["vqvae", "encode", "--run", str(run), "--workers", "0", "--device", "cpu"],
    "codes/meta.json": lambda run: ["prior", "train", "--run", str(run), *PRIOR],
}


@pytest.mark.parametrize("name", list(TARGETS))
@settings(max_examples=FEW, **_SETTINGS)
@given(data=st.data())
def test_mutated_files_give_a_result_or_one_line(base, tmp_path_factory, name, data):
    _fuzz_file(base, tmp_path_factory, data, name, TARGETS[name])


NUMBERS = st.sampled_from([-1, 0, 1, 3, 10**12, -1e308, 1e308, math.nan, math.inf, 0.5, 1e-12])


@settings(max_examples=3 * FEW, **_SETTINGS)
@given(samples=NUMBERS, hidden=NUMBERS, layers=NUMBERS, margin=NUMBERS, noise=NUMBERS, steps=NUMBERS)
def test_fit_numbers(tmp_path_factory, samples, hidden, layers, margin, noise, steps):
    out = tmp_path_factory.mktemp("fit")
    (out / "notes.txt").write_text("the user's")
    args = [
        "fit",
        "--expr",
        "sin(x)",
        "--domain",
        "x=0:1",
        "--samples",
        str(samples),
        "--hidden",
        str(hidden),
        "--layers",
        str(layers),
        "--margin",
        str(margin),
        "--noise",
        str(noise),
        "--max-steps",
        str(steps),
        "--out",
        str(out / "run"),
    ]
    if (isinstance(hidden, int) and hidden > 64) or (isinstance(samples, int) and samples > 5000):
        args += ["--max-steps", "0"]  # a valid but large request: keep the test fast, the bounds are what is tested
    _check(CliRunner().invoke(cli, args), out / "notes.txt")


@settings(max_examples=2 * FEW, **_SETTINGS)
@given(n=NUMBERS, temperature=NUMBERS, keep=NUMBERS)
def test_sample_numbers(base, n, temperature, keep):
    args = [
        "sample",
        "--run",
        str(base),
        "--reject-with",
        "classifier",
        "--n",
        str(n),
        "--temperature",
        str(temperature),
        "--keep",
        str(keep),
        "--out",
        str(base / "never.png"),
        "--device",
        "cpu",
    ]
    res = CliRunner().invoke(cli, args)
    if res.exit_code == 0:  # a valid request: the run has no priors, so it cannot succeed
        pytest.fail(res.output)
    _check(res, base / "notes.txt")
    assert not (base / "never.png").exists()


@pytest.mark.slow
def test_fuzz_many_examples():
    """make test-slow: the same targets with many examples."""
    import subprocess
    import sys

    env = {**os.environ, "ARCHKIT_FUZZ_EXAMPLES": "60"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", __file__], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_mutation_helper():
    doc = {"a": [1, {"b": 2}]}
    assert [p for p, _ in _paths(doc)] == [(), ("a",), ("a", 0), ("a", 1), ("a", 1, "b")]
    assert _mutate(doc, ("a", 1, "b"), None, True) == {"a": [1, {}]}
    assert np.isnan(_mutate({}, (), math.nan, False))
