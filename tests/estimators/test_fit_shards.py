"""RocketClassifier.fit_shards: streamed features into a ridge by GCV (or a logistic head), resumable, on shards."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier

from archkit.data.sequences import from_arrays, open_shards
from archkit.estimators import RocketClassifier
from archkit.train import ridge_stats


def write_shards(folder, n=(14, 10, 12), steps=40, seed=0):
    """Three .npy shards of two-class series (class 1: a bump), the second with lengths; returns (series list, y)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    series, labels = [], []
    for k, m in enumerate(n):
        y = rng.integers(0, 2, m)
        x = rng.standard_normal((m, steps, 3)).astype(np.float32)
        x[y == 1, 10:20, 0] += 3.0
        lengths = rng.integers(24, steps + 1, m) if k == 1 else np.full(m, steps)
        np.save(folder / f"s{k}_x.npy", x)
        np.save(folder / f"s{k}_y.npy", y)
        if k == 1:
            np.save(folder / f"s{k}_lengths.npy", lengths)
        series += [x[i, : lengths[i]] for i in range(m)]
        labels.append(y)
    return series, np.concatenate(labels)


def test_streamed_fit_equals_in_memory_transform_and_a_ridge_at_the_chosen_alpha(tmp_path):
    series, y = write_shards(tmp_path / "shards")
    clf = RocketClassifier(num_features=168, random_state=0, batch_size=5, device="cpu")
    clf.fit_shards(tmp_path / "shards", progress=True)
    ref = RocketClassifier(num_features=168, random_state=0, device="cpu").fit(series, y)
    for name, buf in ref.transform_.state_dict().items():  # every case is in the fit sample: the same transform
        torch.testing.assert_close(clf.transform_.state_dict()[name], buf, rtol=0, atol=0)
    feats = ref.transform_(*[torch.as_tensor(a) for a in ref._series(series)[:2]]).numpy()
    z = (feats - feats.mean(0)) / feats.std(0)
    ridge = RidgeClassifier(alpha=clf.fit_info_["alpha"]).fit(z.astype(np.float64), y)
    np.testing.assert_allclose(clf.head_.coef_.ravel(), np.ravel(ridge.coef_), rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(series), ridge.predict(z))
    assert clf.score(series, y) > 0.9 and list(clf.classes_) == [0, 1]
    assert clf.fit_info_["cases"] == 36 and clf.fit_info_["shards"] == 3 and clf.fit_info_["head"] == "ridge"


def test_streamed_fit_folds_rows_into_sums_past_max_rows_with_the_same_head(tmp_path, monkeypatch):
    series, _ = write_shards(tmp_path / "shards")
    kept = RocketClassifier(num_features=168, random_state=1, batch_size=4, device="cpu").fit_shards(
        tmp_path / "shards"
    )
    monkeypatch.setattr(ridge_stats, "MAX_ROWS", 8)  # XᵀX from the 3rd batch on: the primal solve
    folded = RocketClassifier(num_features=168, random_state=1, batch_size=4, device="cpu").fit_shards(
        tmp_path / "shards"
    )
    assert folded.fit_info_["alpha"] == kept.fit_info_["alpha"]
    np.testing.assert_allclose(folded.head_.coef_, kept.head_.coef_, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(folded.predict(series), kept.predict(series))


class Stop(Exception):
    pass


@pytest.mark.parametrize("max_rows", [1024, 6])
def test_interrupted_fit_resumes_from_its_last_saved_block_to_the_same_head(tmp_path, monkeypatch, max_rows):
    monkeypatch.setattr(ridge_stats, "MAX_ROWS", max_rows)
    series, _ = write_shards(tmp_path / "shards")
    make = lambda: RocketClassifier(num_features=168, random_state=2, batch_size=4, device="cpu")  # noqa: E731
    whole = make().fit_shards(tmp_path / "shards")

    def stop_after_5(name, done):
        if done == 5:
            raise Stop

    state = tmp_path / "state"
    with pytest.raises(Stop):
        make().fit_shards(tmp_path / "shards", state_dir=state, every=2, hook=stop_after_5)
    saved = json.loads((state / "ridge.rank0.json").read_text())
    assert saved["batches_done"] == 4 and not saved["complete"]
    seen = []
    resumed = make().fit_shards(tmp_path / "shards", state_dir=state, every=2, hook=lambda n, d: seen.append(d))
    assert seen[0] == 5  # went on after the 4 saved batches
    np.testing.assert_array_equal(resumed.head_.coef_, whole.head_.coef_)
    np.testing.assert_array_equal(resumed.predict(series), whole.predict(series))
    assert not state.exists()  # the fit's own state is removed once done


def test_state_of_another_fit_is_refused(tmp_path):
    write_shards(tmp_path / "shards")

    def stop(name, done):
        raise Stop

    with pytest.raises(Stop):
        RocketClassifier(num_features=168, random_state=0, device="cpu").fit_shards(
            tmp_path / "shards", state_dir=tmp_path / "state", every=1, hook=stop
        )
    with pytest.raises(ValueError, match="belongs to another fit"):
        RocketClassifier(num_features=252, random_state=0, device="cpu").fit_shards(
            tmp_path / "shards", state_dir=tmp_path / "state"
        )


@pytest.mark.parametrize("features", ["hydra", "minirocket+hydra"])
def test_hydra_streamed_scaler_equals_sparse_scaler_on_all_features(tmp_path, features):
    from archkit.layers.hydra import SparseScaler

    series, y = write_shards(tmp_path / "shards")
    clf = RocketClassifier(num_features=168, features=features, random_state=0, batch_size=5, device="cpu")
    clf.fit_shards(tmp_path / "shards")
    x, lengths, _, _ = clf._series(series)
    ref = SparseScaler.fit(clf.hydra_(torch.from_numpy(x), torch.from_numpy(lengths)))
    torch.testing.assert_close(clf.hydra_scaler_.mean, ref.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(clf.hydra_scaler_.scale, ref.scale, rtol=1e-4, atol=1e-5)
    assert clf.score(series, y) > 0.8


def test_logistic_head_trains_on_cached_features_and_removes_them(tmp_path):
    series, y = write_shards(tmp_path / "shards")
    clf = RocketClassifier(num_features=168, head="logistic", random_state=0, device="cpu")
    clf.fit_shards(tmp_path / "shards", state_dir=tmp_path / "state")
    assert clf.head_kind_ == "logistic" and clf.score(series, y) > 0.9
    p = clf.predict_proba(series)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(series))
    assert not (tmp_path / "state").exists()


def test_string_labels_and_bad_arguments(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 30, 2)).astype(np.float32)
    y = np.array(["a", "b"] * 6)
    x[y == "b", 5:10] += 3
    clf = RocketClassifier(num_features=84, random_state=0, device="cpu").fit_shards(from_arrays(x, y))
    assert list(clf.classes_) == ["a", "b"] and clf.predict(x).dtype.kind == "U"
    with pytest.raises(ValueError, match="every"):
        RocketClassifier(device="cpu").fit_shards(from_arrays(x, y), every=-1)
    with pytest.raises(ValueError, match="only one class"):
        RocketClassifier(device="cpu").fit_shards(from_arrays(x, np.zeros(12)))
    with pytest.raises(ValueError, match="labels outside classes"):
        RocketClassifier(num_features=84, device="cpu").fit_shards(from_arrays(x, y), classes=["a", "c"])


WORKER = """
import json, sys, numpy as np
from archkit.estimators import RocketClassifier
from archkit.train.distributed import cleanup_distributed, init_distributed
from archkit.train import ridge_stats

info = init_distributed()
ridge_stats.MAX_ROWS = int(sys.argv[3])
clf = RocketClassifier(num_features=168, features=sys.argv[4], random_state=0, batch_size=4, device="cpu")
clf.fit_shards(sys.argv[1], state_dir=sys.argv[2] + "/state")
with open(f"{sys.argv[2]}/rank{info.rank}.json", "w") as f:
    json.dump({"coef": clf.head_.coef_.tolist(), "intercept": clf.head_.intercept_.tolist()}, f)
cleanup_distributed(info)
"""


@pytest.mark.parametrize(("max_rows", "features"), [(1024, "minirocket"), (6, "minirocket+hydra")])
def test_torchrun_two_ranks_give_the_head_of_one_process(tmp_path, monkeypatch, max_rows, features):
    series, _ = write_shards(tmp_path / "shards")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    cmd += [str(tmp_path / "shards"), str(tmp_path), str(max_rows), features]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    monkeypatch.setattr(ridge_stats, "MAX_ROWS", max_rows)
    one = RocketClassifier(num_features=168, features=features, random_state=0, batch_size=4, device="cpu")
    one.fit_shards(open_shards(tmp_path / "shards"))
    one_pred = one.predict(series)
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        # sums added in another order, and Hydra's float32 scaler from them: equal to float32 rounding
        np.testing.assert_allclose(np.array(got["coef"]), one.head_.coef_, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.array(got["intercept"]), one.head_.intercept_, rtol=1e-4, atol=1e-6)
        ranked = copy.deepcopy(one)
        ranked.head_.coef_, ranked.head_.intercept_ = np.array(got["coef"]), np.array(got["intercept"])
        np.testing.assert_array_equal(ranked.predict(series), one_pred)
