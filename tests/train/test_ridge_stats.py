"""RidgeStats: a ridge from streamed sums equals scikit-learn's Ridge; GCV exact; shift, fold and state round trips."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from archkit.train import ridge_stats
from archkit.train.ridge_stats import ALPHAS, RidgeStats, default_max_rows


def _data(n, f, k, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, f)) * rng.uniform(0.1, 10, f) + 1000).astype(np.float32)  # large means
    y = rng.integers(0, k, n)
    x[:, 0] += 2 * y  # one informative feature
    return x, y


def _fed(x, y, max_rows, batch=7):
    stats = RidgeStats(x.shape[1], int(y.max()) + 1, max_rows=max_rows)
    for i in range(0, len(x), batch):
        stats.update(x[i : i + batch], y[i : i + batch], i // batch)
    return stats


def _brute(z, t, criterion):
    """Every alpha's GCV or mean squared leave-one-out error, from the explicit hat matrix."""
    n, f = z.shape
    zz = np.c_[np.ones(n), z]
    out = []
    for a in ALPHAS:
        penalty = np.eye(f + 1) * a
        penalty[0, 0] = 0  # the intercept is not penalized
        hat = zz @ np.linalg.solve(zz.T @ zz + penalty, zz.T)
        resid = t - hat @ t
        if criterion == "loo":
            out.append(((resid / (1 - np.diag(hat))[:, None]) ** 2).mean())
        else:
            out.append((resid**2).sum() / n / (1 - np.trace(hat) / n) ** 2)
    return np.array(out)


@pytest.mark.parametrize(
    ("n", "f", "k", "max_rows", "block", "loo_max", "criterion"),
    [
        (60, 30, 3, 1024, 1024, 4096, "loo"),
        (60, 30, 3, 1024, 1024, 10, "gcv"),  # kept as rows, but past the leave-one-out bound
        (60, 30, 3, 10, 1024, 4096, "gcv"),
        (40, 100, 2, 1024, 1024, 4096, "loo"),
        (90, 20, 4, 5, 1024, 4096, "gcv"),
        (40, 100, 2, None, 7, 4096, "loo"),
    ],
)
def test_solution_and_criterion_equal_ridge_on_standardized_features(
    n, f, k, max_rows, block, loo_max, criterion, monkeypatch
):
    monkeypatch.setattr(ridge_stats, "BLOCK", block)  # the N×N path standardizes `block` columns at a time
    monkeypatch.setattr(ridge_stats, "LOO_MAX_ROWS", loo_max)
    x, y = _data(n, f, k)
    sol = _fed(x, y, max_rows).solve()
    x64 = x.astype(np.float64)
    z = (x64 - x64.mean(0)) / x64.std(0)
    t = -np.ones((n, k))
    t[np.arange(n), y] = 1
    brute = _brute(z, t, criterion)
    assert sol["criterion"] == criterion
    np.testing.assert_allclose(sol["cv_scores"], brute, rtol=1e-6)
    assert sol["alpha"] == ALPHAS[int(np.argmin(brute))]
    ridge = Ridge(alpha=sol["alpha"]).fit(z, t)
    np.testing.assert_allclose(sol["coef"], ridge.coef_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(sol["intercept"], ridge.intercept_, atol=1e-8)
    np.testing.assert_allclose(sol["mean"], x64.mean(0), rtol=1e-10)


@pytest.mark.parametrize(("n", "f", "k"), [(80, 40, 3), (50, 200, 2), (120, 30, 4)])
def test_up_to_the_bound_the_head_is_scikit_learns_ridge_classifier_cv(n, f, k):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((n, f)) * rng.uniform(0.1, 10, f) + 5).astype(np.float32)
    y = rng.integers(0, k, n)
    x[:, :3] += y[:, None] * rng.uniform(0.2, 1.0, 3)  # a little signal, so the alphas' scores differ
    sol = _fed(x, y, None).solve()
    z = StandardScaler(with_mean=False).fit_transform(x.astype(np.float64))  # as RocketClassifier's ridge
    ref = RidgeClassifierCV(alphas=ALPHAS).fit(z, y)
    assert sol["criterion"] == "loo" and sol["alpha"] == ref.alpha_
    scores = ((x - sol["mean"]) / sol["scale"]) @ sol["coef"].T + sol["intercept"]
    want = ref.decision_function(z)
    want = np.c_[-want, want] if k == 2 else want  # binary: one ±1 column in scikit-learn, two here
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)


def test_unscaled_features_are_only_centred_and_state_round_trips():
    x, y = _data(50, 12, 3)
    mask = np.arange(12) < 6
    for max_rows in (1024, 4):
        stats = _fed(x, y, max_rows)
        again = RidgeStats.from_state(*stats.state_dict())
        a, b = stats.solve(mask), again.solve(mask)
        np.testing.assert_array_equal(a["coef"], b["coef"])
        np.testing.assert_array_equal(a["scale"][6:], np.ones(6))
        np.testing.assert_allclose(a["scale"][:6], x[:, :6].astype(np.float64).std(0), rtol=1e-10)


def test_cases_are_kept_as_rows_while_the_n_by_n_solve_is_cheaper_then_folded():
    assert default_max_rows(10) == 1024 and default_max_rows(9996) == 8496
    x, y = _data(30, 8, 2)
    kept = _fed(x, y, None)
    assert kept.gram is None and sum(len(r[2]) for r in kept.rows) == 30
    folded = _fed(x, y, 20)  # past max_rows: the sums, with XᵀX's upper triangle exactly (x - shift)ᵀ(x - shift)
    assert folded.rows == [] and folded.gram is not None
    xs = x.astype(np.float64) - folded.shift
    np.testing.assert_allclose(np.triu(folded.gram), np.triu(xs.T @ xs), rtol=1e-10)


@pytest.mark.parametrize("max_rows", [1024, 10])
def test_where_mrrr_fails_divide_and_conquer_gives_the_same_solution(max_rows, monkeypatch):
    # MRRR (LAPACK stemr) can fail on a large cluster of eigenvalues, e.g. 1,000 zeros of a 2,000-square
    # Gram of rank 1,000; made to fail here, the divide-and-conquer fallback must give the same ridge
    import scipy.linalg

    monkeypatch.setattr(ridge_stats, "LOO_MAX_ROWS", 10)  # the tridiagonal path on kept rows too
    x, y = _data(60, 30, 3)
    want = _fed(x, y, max_rows).solve()

    def fails(*args, **kwargs):
        raise np.linalg.LinAlgError("stemr (eigh_tridiagonal) did not converge (LAPACK info=22)")

    monkeypatch.setattr(scipy.linalg, "eigh_tridiagonal", fails)
    got = _fed(x, y, max_rows).solve()
    assert got["alpha"] == want["alpha"]
    np.testing.assert_allclose(got["cv_scores"], want["cv_scores"], rtol=1e-9)
    np.testing.assert_allclose(got["coef"], want["coef"], rtol=1e-7, atol=1e-12)


def test_reshift_is_exact():
    x, y = _data(40, 8, 2)
    a = _fed(x, y, 0)
    b = _fed(x, y, 0)
    b.reshift(np.full(8, 3.0))
    sa, sb = a.solve(), b.solve()
    np.testing.assert_allclose(sb["coef"], sa["coef"], rtol=1e-8, atol=1e-12)


def test_bad_input_is_refused():
    stats = RidgeStats(4, 2)
    with pytest.raises(ValueError, match="features: expected shape"):
        stats.update(np.zeros((3, 5)), np.zeros(3, int))
    with pytest.raises(ValueError, match="class ids in"):
        stats.update(np.zeros((2, 4)), np.array([0, 2]))
    with pytest.raises(ValueError, match="at least 2 cases"):
        stats.solve()
