"""Long tasks built from aeon's bundled series: shapes, determinism, disjoint sources, shards, refusal to overwrite."""

import json

import numpy as np
import pytest

from archkit.data import open_shards
from archkit.data.real_tasks import TASK_FILE, _pooled, make_real_task, source_split, write_real_task

pytest.importorskip("aeon")  # the source series ship inside aeon (the `seq` extra)


@pytest.mark.parametrize("task", ["needle", "order"])
def test_make_task_shape_balance_determinism(task):
    x, y = make_real_task(task, 16, seed=3, length=512)
    assert x.shape == (16, 512, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y, minlength=4).tolist() == [4, 4, 4, 4]
    x2, y2 = make_real_task(task, 16, seed=3, length=512)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = make_real_task(task, 16, seed=4, length=512)
    assert not np.array_equal(x, x3)
    assert not np.array_equal(x, make_real_task(task, 16, seed=3, length=512, draw=1)[0])


def test_info_says_where_the_labelled_segments_are():
    """`info` leaves the cases unchanged and names each case's hidden recordings, of its class, where they are."""
    length = 2048
    info: list = []
    x, y = make_real_task("needle", 12, seed=2, split="test", length=length, info=info)
    assert np.array_equal(x, make_real_task("needle", 12, seed=2, split="test", length=length)[0])
    series, labels = _pooled("BasicMotions")
    assert len(info) == 12
    for i, case in enumerate(info):
        assert labels[case["source"]] == y[i]
        assert case["source"] in set(source_split(labels, 2, "test"))
        assert case["start"] >= 0 and case["start"] + case["width"] <= length
        assert 100 <= case["width"] <= 5 * len(series[case["source"]])
        # badminton and running move a lot: their recording's steps stand out of the background around them
        seg = x[i, case["start"] : case["start"] + case["width"], :6]
        rest = np.delete(x[i, :, :6], np.s_[case["start"] : case["start"] + case["width"]], 0)
        if y[i] in (0, 1):
            assert np.abs(np.diff(seg, axis=0)).mean() > 2 * np.abs(np.diff(rest, axis=0)).mean()
    info = []
    x, y = make_real_task("order", 8, seed=1, split="test", length=length, info=info)
    _, speakers = _pooled("JapaneseVowels")
    for i, case in enumerate(info):
        first, second, _ = case["starts"]
        assert speakers[case["sources"][0]] == y[i] and speakers[case["sources"][1]] == y[i] ^ 1
        assert second - first >= case["width"] + length // 4 and second + case["width"] <= length
    with pytest.raises(ValueError, match="info: expected a list"):
        make_real_task("order", 4, length=256, info={})


@pytest.mark.parametrize("name", ["BasicMotions", "JapaneseVowels", "ACSF1"])
def test_train_and_test_use_disjoint_source_series(name):
    _, labels = _pooled(name)
    for seed in (0, 1):
        tr, te = source_split(labels, seed, "train"), source_split(labels, seed, "test")
        assert not set(tr) & set(te)
        assert len(tr) + len(te) == len(labels)
        assert set(labels[tr]) == set(labels[te]) == set(labels)  # every class on both sides
    assert not np.array_equal(source_split(labels, 0, "train"), source_split(labels, 1, "train"))


def test_write_task_shards_stream_back(tmp_path):
    out = write_real_task(tmp_path / "t", "needle", n_train=10, n_test=6, seed=1, length=256, shard_size=4)
    train, test = open_shards(out / "train"), open_shards(out / "test")
    assert len(train) == 10 and len(test) == 6 and len(train.shards) == 3
    assert train.in_features == 8 and train.timesteps == 256
    xb, yb, _ = next(train.batches(4, shuffle=False))
    x0, y0 = make_real_task("needle", 4, seed=1, split="train", length=256, draw=0)
    assert np.allclose(xb.numpy(), x0) and np.array_equal(yb, y0)
    info = json.loads((out / TASK_FILE).read_text())
    assert info["task"] == "needle" and info["n_train"] == 10
    write_real_task(out, "order", n_train=4, n_test=4, seed=0, length=256)  # archkit's own folder: replaced
    assert len(open_shards(out / "train")) == 4


def test_write_task_refuses_foreign_folder_and_bad_numbers(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(ValueError, match="holds files archkit did not write"):
        write_real_task(tmp_path, "needle", 4, 4, length=256)
    assert (tmp_path / "mine.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="n_train: expected an int"):
        write_real_task(tmp_path / "new", "needle", 0, 4)
    with pytest.raises(ValueError, match="length: expected an int"):
        make_real_task("order", 4, length=100)
    with pytest.raises(ValueError, match="task: expected one of"):
        make_real_task("haystack", 4)
