import sys
import warnings

import numpy as np
import pytest
import torch

from archkit import data as ds


class CountingRows:
    """Wraps an array and records every row index read through it."""

    def __init__(self, array):
        self.array, self.rows = array, []
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, idx):
        self.rows.extend(np.arange(self.shape[0])[idx].ravel().tolist())
        return self.array[idx]


def _write_xy(tmp_path, n=20, t=16, f=3):
    x = np.random.default_rng(0).standard_normal((n, t, f)).astype(np.float32)
    x[:, 0, 0] = np.arange(n)  # row id inside the data, to check x/y alignment
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", np.arange(n) % 4)
    return x


def test_npy_is_memory_mapped_and_batches_align_x_with_y(tmp_path):
    _write_xy(tmp_path)
    data = ds.open_npy(tmp_path / "X.npy", tmp_path / "Y.npy")
    assert isinstance(data.shards[0].x, np.memmap)  # not loaded into memory
    seen = []
    for xb, yb, lb in data.batches(6, shuffle=True, seed=1):
        ids = xb[:, 0, 0].numpy().astype(int)
        assert lb is None and xb.dtype.is_floating_point
        np.testing.assert_array_equal(ids % 4, yb)
        seen += ids.tolist()
    assert sorted(seen) == list(range(20))
    assert seen != list(range(20))  # shuffled


def test_streaming_reads_only_the_requested_rows(tmp_path):
    _write_xy(tmp_path, n=50)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    counting = CountingRows(mm)
    data = ds.from_arrays(counting, np.arange(50) % 4)
    it = data.batches(8, shuffle=True, seed=0)
    xb, _yb, _ = next(it)
    assert len(counting.rows) == 8 and len(xb) == 8
    np.testing.assert_array_equal(xb[:, 0, 0].numpy().astype(int), counting.rows)
    for _ in it:
        pass
    assert sorted(counting.rows) == list(range(50))  # each row read exactly once per epoch
    # a held-out view reads only its own rows; resuming at batch 2 reads nothing before it
    train, held = data.split(0.2, seed=0)
    counting.rows.clear()
    list(held.batches(4, shuffle=False))
    assert sorted(counting.rows) == sorted(held.rows[0].tolist()) and len(counting.rows) == 10
    counting.rows.clear()
    plan = train.batch_plan(8, shuffle=True, seed=3)
    list(train.batches(8, shuffle=True, seed=3, start=2))
    assert counting.rows == np.concatenate([idx for _, idx in plan[2:]]).tolist()
    assert not set(train.rows[0]) & set(held.rows[0])


def test_block_shuffle_keeps_blocks_contiguous():
    data = ds.from_arrays(np.zeros((40, 2, 1)), np.zeros(40, dtype=int))
    plan = data.batch_plan(10, shuffle=True, seed=0, block=10)
    for _, idx in plan:
        assert idx.max() - idx.min() == 9  # each batch is one 10-row block


def test_shard_folder_streams_every_shard_and_skips_corrupt_ones_with_one_warning(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.standard_normal((7, 12, 2)).astype(np.float32), y=np.arange(7) % 3)
    np.save(tmp_path / "b_x.npy", rng.standard_normal((5, 9, 2)).astype(np.float32))
    np.save(tmp_path / "b_y.npy", np.arange(5) % 3)
    np.save(tmp_path / "b_lengths.npy", np.array([9, 3, 4, 1, 9]))
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    np.save(tmp_path / "c_x.npy", np.zeros((4, 12, 2), dtype=np.float32))
    (tmp_path / "c_x.npy").write_bytes((tmp_path / "c_x.npy").read_bytes()[:100])  # truncated
    np.save(tmp_path / "c_y.npy", np.zeros(4, dtype=int))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = ds.open_shards(tmp_path)
    assert len([w for w in caught if "corrupt shard" in str(w.message)]) == 1
    assert "skipped 2" in str(caught[0].message)
    assert data.skipped == 2 and len(data) == 12 and data.in_features == 2
    batches = list(data.batches(4, shuffle=True, seed=0))
    assert sum(len(yb) for _, yb, _ in batches) == 12
    assert all(xb.shape[1] in (9, 12) for xb, _, _ in batches)
    assert any(lb is not None and lb.max() <= 9 for _, _, lb in batches)


def test_empty_or_missing_shard_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.open_shards(tmp_path / "nope")
    with pytest.raises(ValueError, match="no readable shards"):
        ds.open_shards(tmp_path)


def test_bad_npy_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--x"):
        ds.open_npy(tmp_path / "X.npy", tmp_path / "Y.npy")
    (tmp_path / "X.npy").write_bytes(b"garbage")
    np.save(tmp_path / "Y.npy", np.zeros(3))
    with pytest.raises(ValueError, match="--x"):
        ds.open_npy(tmp_path / "X.npy", tmp_path / "Y.npy")
    with pytest.raises(ValueError, match="one target per sequence"):
        ds.from_arrays(np.zeros((4, 5, 2)), np.zeros(3))


def test_bundled_real_datasets_load_without_download():
    names = ds.list_real_datasets()
    for expected in ("BasicMotions", "JapaneseVowels", "GunPoint", "ArrowHead"):
        assert expected in names
    jv = ds.load_real_dataset("JapaneseVowels")  # variable-length, 12 channels, 9 speakers
    assert jv.x_train.shape[2] == 12 and len(jv.classes) == 9
    assert jv.lengths_train.min() < jv.lengths_train.max() == jv.x_train.shape[1]
    i = int(np.argmin(jv.lengths_train))
    assert np.all(jv.x_train[i, jv.lengths_train[i] :] == 0)
    assert set(np.unique(jv.y_test)) <= set(range(9))
    bm = ds.load_real_dataset("BasicMotions")
    assert bm.x_train.shape == (40, 100, 6) and len(bm.test()) == 40


def test_unbundled_name_lists_the_bundled_ones():
    with pytest.raises(ValueError, match="BasicMotions"):
        ds.load_real_dataset("Wafer")


def test_missing_aeon_names_the_seq_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(ImportError, match=r"archkit\[seq\]"):
        ds.list_real_datasets()


def test_long_task_needs_the_start_of_the_sequence():
    from sklearn.linear_model import LogisticRegression

    x, y = ds.make_long_task(600, seed=0, length=512)
    assert x.shape == (600, 512, 8) and x.dtype == np.float32
    assert np.bincount(y, minlength=4).min() > 100
    xt, yt = ds.make_long_task(300, seed=1, length=512)

    def fit_score(part):
        feats = lambda a: a[:, part].max(1)  # noqa: E731 (per-channel peak over the visible part)
        return LogisticRegression(max_iter=2000).fit(feats(x), y).score(feats(xt), yt)

    assert fit_score(slice(None)) > 0.9  # the whole sequence determines the label
    assert fit_score(slice(256, None)) < 0.65  # the end alone: only the late event -> about 50%


def test_write_long_task_is_memory_mappable_and_reused(tmp_path):
    xp, yp = ds.write_long_task(tmp_path, 10, length=128, chunk=4)
    x = np.load(xp, mmap_mode="r")
    assert x.shape == (10, 128, 8) and np.load(yp).shape == (10,)
    mtime = xp.stat().st_mtime_ns
    ds.write_long_task(tmp_path, 10, length=128, chunk=4)
    assert xp.stat().st_mtime_ns == mtime


def test_two_workers_stream_the_same_batches_and_memmaps_travel_by_reference(tmp_path):
    import pickle

    _write_xy(tmp_path, n=50)
    rng = np.random.default_rng(1)
    (tmp_path / "s").mkdir()
    np.savez(tmp_path / "s" / "a.npz", x=rng.standard_normal((9, 12, 3)).astype(np.float32), y=np.arange(9) % 4)
    for data in (ds.open_npy(tmp_path / "X.npy", tmp_path / "Y.npy"), ds.open_shards(tmp_path / "s")):
        a = list(data.batches(8, shuffle=True, seed=4, start=1))
        b = list(data.batches(8, shuffle=True, seed=4, start=1, workers=2))
        assert len(a) == len(b) == data.num_batches(8) - 1
        for (xa, ya, la), (xb, yb, lb) in zip(a, b):
            assert torch.equal(xa, xb) and isinstance(yb, np.ndarray) and np.array_equal(ya, yb) and la is lb is None
    plan = ds.sequences.PlannedBatches(ds.open_npy(tmp_path / "X.npy", tmp_path / "Y.npy"), [(0, np.arange(3))])
    blob = pickle.dumps(plan)  # what a spawned worker receives: the file's place, not its 50 rows
    assert len(blob) < 2000 and torch.equal(pickle.loads(blob)[0][0], plan[0][0])
    with pytest.raises(ValueError, match="workers"):
        next(plan.data.batches(8, workers=-1))


@pytest.mark.parametrize("bad", [-40, 0, 49])
def test_a_shard_whose_lengths_leave_1_to_t_is_skipped_with_a_warning_naming_it(tmp_path, bad):
    x = np.zeros((3, 48, 2), np.float32)
    for name, lengths in (("good", [48, 8, 1]), ("bad", [48, bad, 8])):
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.array([0, 1, 0]))
        np.save(tmp_path / f"{name}_lengths.npy", np.array(lengths))
    with pytest.warns(UserWarning, match=rf"skipped 1 corrupt.*bad_x\.npy.*in \[1, 48\].*got {bad} at row 1"):
        data = ds.open_shards(tmp_path)
    assert [s.name for s in data.shards] == ["good"]
    with pytest.raises(ValueError, match=r"^lengths: expected every length in \[1, 48\]"):
        ds.from_arrays(x, np.zeros(3), np.array([48, bad, 8]))
    with pytest.raises(ValueError, match=r"^lengths: expected integer lengths"):
        ds.from_arrays(x, np.zeros(3), np.array([48, 7.5, 8]))


def test_text_labels_in_a_shard_skip_it_naming_the_dtype(tmp_path):
    np.save(tmp_path / "a_x.npy", np.zeros((2, 4, 1), np.float32))
    np.save(tmp_path / "a_y.npy", np.array(["cat", "dog"]))
    with (
        pytest.warns(UserWarning, match=r"a_x\.npy.*dtype <U3, e\.g\. 'cat'"),
        pytest.raises(ValueError, match="no readable"),
    ):
        ds.open_shards(tmp_path)
