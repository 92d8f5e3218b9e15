"""A ridge classifier fitted from statistics gathered in one pass over streamed features, alpha chosen exactly.

    stats = RidgeStats(num_features, num_classes)
    for k, (features, y) in enumerate(batches):           # features (B, F) float32, y (B,) class ids
        stats.update(features, y, k)
    stats.all_reduce()                                     # under torchrun: the ranks' sums added up
    head = stats.solve(standardize)                        # mean, scale, coef, intercept, alpha, cv_scores

Targets are RidgeClassifier's: +1 for the case's class, -1 elsewhere. The statistics are the feature
sums, XᵀX and Xᵀy, accumulated in float64 around a shift (the first batch's mean, so large means do
not cancel the variances away). `solve` standardizes from them (the features where `standardize` is
True get unit variance, as StandardScaler; the others are only centred, as the ridge's intercept
does), takes one eigendecomposition of the centred, scaled Gram S = V diag(d) Vᵀ (through its
tridiagonal form, V never formed; on a CUDA device torch.linalg.eigh) and scores every
alpha by generalized cross-validation, GCV(α) = (RSS/n) / (1 - tr(H)/n)² with tr(H) = 1 + Σ d/(d+α)
(the intercept counts one) and RSS = ‖Yc‖² - Σ q²(d+2α)/(d+α)², q = Vᵀ Zᵀ Yc: exact, no refit per
alpha. XᵀX costs 8·F² bytes and its eigendecomposition as much again (1.6 GB at 10,000 features).

Up to `max_rows` cases (by default 0.85·F, at least 1,024) the features themselves are kept instead
and the solve runs on the N×N Gram Z Zᵀ, which has the same non-zero eigenvalues: the same solution
for N³ instead of F³ work (2 s instead of minutes at 2,048 cases of 10,000 features), in no more
memory than the F×F path (4·N·F + 16·N² bytes, against 16·F² for XᵀX and its eigenvectors, while
N ≤ 0.85·F). Past `max_rows` they are folded into XᵀX. Up to 4,096 cases the N×N eigenvectors are
formed and alpha minimizes the exact mean squared leave-one-out error instead, RidgeClassifierCV's own
criterion, so on data of that size the streamed head is scikit-learn's (same alpha, same weights);
beyond it GCV, leave-one-out's rotation-invariant approximation, which needs no per-case leverage.

Only the upper triangle of XᵀX (and of Z Zᵀ) is formed, by BLAS syrk in place: a rank-B update of an
F×F matrix through a temporary (x.T @ x, then +=) moves 1.6 GB per batch at 10,000 features, and
took 40 times longer than the update itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))  # RidgeClassifierCV's in RocketClassifier
MAX_ROWS: int | None = None  # None: max(1024, 0.85·F) cases kept before folding into XᵀX
BLOCK = 1024  # feature columns standardized at a time on the N×N path
LOO_MAX_ROWS = 4096  # up to here the N×N eigenvectors are formed and alpha is chosen by exact leave-one-out


def default_max_rows(num_features: int) -> int:
    """Cases kept as rows (the N×N solve) before folding into XᵀX: up to 0.85·F it is cheaper and no larger."""
    return max(1024, (85 * int(num_features)) // 100)


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RidgeStats:
    """Sums over streamed (features, class id) batches from which `solve` fits a ridge classifier exactly."""

    def __init__(self, num_features: int, num_classes: int, max_rows: int | None = None) -> None:
        if num_features < 1 or num_classes < 2:
            raise ValueError(
                f"num_features / num_classes: expected >= 1 and >= 2, got {num_features} and {num_classes}"
            )
        self.num_features, self.num_classes = int(num_features), int(num_classes)
        max_rows = MAX_ROWS if max_rows is None else max_rows
        self.max_rows = default_max_rows(num_features) if max_rows is None else int(max_rows)
        self.n = 0
        self.rows: list[tuple[int, np.ndarray, np.ndarray]] = []  # (batch index, features, class ids) while kept
        self.shift: np.ndarray | None = None
        self.s1 = np.zeros(num_features)
        self.gram: np.ndarray | None = None
        self.xty = np.zeros((num_features, num_classes))
        self.ysum = np.zeros(num_classes)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        t = -np.ones((len(y), self.num_classes))
        t[np.arange(len(y)), y] = 1.0
        return t

    def update(self, features: np.ndarray, y: np.ndarray, batch: int = 0) -> None:
        """Add one batch: features (B, F), class ids y (B,) in [0, num_classes); `batch` orders kept rows."""
        features = np.asarray(features)
        y = np.asarray(y, dtype=np.int64)
        if features.ndim != 2 or features.shape[1] != self.num_features or len(y) != len(features):
            raise ValueError(
                f"features: expected shape (B, {self.num_features}) with B = len(y) = {len(y)}, got {features.shape}"
            )
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"y: expected class ids in [0, {self.num_classes - 1}], got [{y.min()}, {y.max()}]")
        self.n += len(y)
        if self.gram is None:
            self.rows.append((int(batch), np.array(features, np.float32), y.copy()))
            if self.n > self.max_rows:
                self.fold()
            return
        self._add(features, y)

    def _add(self, features: np.ndarray, y: np.ndarray) -> None:
        assert self.gram is not None and self.shift is not None
        x = features.astype(np.float64) - self.shift
        t = self._targets(y)
        self.s1 += x.sum(0)
        _syrk_upper(self.gram, x, trans=0)
        self.xty += x.T @ t
        self.ysum += t.sum(0)

    def fold(self) -> None:
        """Turn kept rows into the sums (the shift: the mean of the first batch's features)."""
        if self.gram is not None:
            return
        self.rows.sort(key=lambda r: r[0])
        self.gram = np.zeros((self.num_features, self.num_features))
        if self.shift is None:
            self.shift = self.rows[0][1].astype(np.float64).mean(0) if self.rows else np.zeros(self.num_features)
        for _, f, y in self.rows:
            self._add(f, y)
        self.rows = []

    def reshift(self, shift: np.ndarray) -> None:
        """Re-express the sums around another shift (exactly), so ranks' sums can be added."""
        self.fold()
        assert self.gram is not None and self.shift is not None
        delta = self.shift - shift
        self.gram += np.outer(self.s1, delta) + np.outer(delta, self.s1) + self.n * np.outer(delta, delta)
        self.xty += np.outer(delta, self.ysum)
        self.s1 += self.n * delta
        self.shift = np.asarray(shift, np.float64).copy()

    def all_reduce(self) -> None:
        """Under torch.distributed: every rank ends with the statistics of all ranks' batches (one process: no-op)."""
        _, world = _dist()
        if world == 1:
            return
        dist = torch.distributed
        folded = torch.tensor([float(self.gram is not None)], dtype=torch.float64)
        dist.all_reduce(folded, op=dist.ReduceOp.MAX)
        if not folded.item():  # small data: every rank's rows, in batch order, as one process holds them
            parts: list[Any] = [None] * world
            dist.all_gather_object(parts, self.rows)
            self.rows = sorted((r for p in parts for r in p), key=lambda r: r[0])
            self.n = sum(len(r[2]) for r in self.rows)
            if self.n > self.max_rows:
                self.fold()
            return
        self.fold()
        shifts: list[Any] = [None] * world
        dist.all_gather_object(shifts, (self.n, self.shift))
        common = next((s for n, s in shifts if n > 0), shifts[0][1])
        self.reshift(common)
        assert self.gram is not None
        for name in ("s1", "gram", "xty", "ysum"):
            t = torch.from_numpy(getattr(self, name))
            dist.all_reduce(t)
            setattr(self, name, t.numpy())
        n = torch.tensor([self.n], dtype=torch.int64)
        dist.all_reduce(n)
        self.n = int(n.item())

    # ----------------------------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors for safetensors, JSON-able metadata) to save and resume from."""
        meta = {"n": self.n, "num_features": self.num_features, "num_classes": self.num_classes}
        meta["folded"] = self.gram is not None
        meta["max_rows"] = self.max_rows
        if self.gram is None:
            tensors = {}
            for i, (k, f, y) in enumerate(self.rows):
                tensors[f"rows.{i}.features"] = torch.from_numpy(f)
                tensors[f"rows.{i}.y"] = torch.from_numpy(y)
                tensors[f"rows.{i}.batch"] = torch.tensor([k])
            meta["num_row_blocks"] = len(self.rows)
            return tensors, meta
        assert self.shift is not None
        names = ("shift", "s1", "gram", "xty", "ysum")
        return {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in names}, meta

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> RidgeStats:
        """The statistics `state_dict` returned."""
        stats = cls(int(meta["num_features"]), int(meta["num_classes"]), int(meta["max_rows"]))
        stats.n = int(meta["n"])
        if meta["folded"]:
            for k in ("shift", "s1", "gram", "xty", "ysum"):
                setattr(stats, k, tensors[k].numpy().astype(np.float64))
        else:
            stats.rows = [
                (
                    int(tensors[f"rows.{i}.batch"][0]),
                    tensors[f"rows.{i}.features"].numpy(),
                    tensors[f"rows.{i}.y"].numpy(),
                )
                for i in range(int(meta["num_row_blocks"]))
            ]
        return stats

    # ----------------------------------------------------------------------------------------------
    def solve(  # spends the sums (XᵀX becomes S in place): save or copy the state before, if needed
        self, standardize: np.ndarray | None = None, alphas: tuple[float, ...] = ALPHAS, device: Any = None
    ) -> dict[str, Any]:
        """{mean, scale, coef (K, F), intercept (K,), alpha, criterion, cv_scores}: x -> ((x - mean) / scale) @ coef.T + intercept.

        `standardize` (F,) bool: features scaled to unit variance (default all); the others keep scale 1.
        `device`: a CUDA device runs the eigendecomposition there (float64), else scipy on the CPU.
        """
        if self.n < 2:
            raise ValueError(f"data: a ridge fit needs at least 2 cases, got {self.n}")
        std_mask = np.ones(self.num_features, bool) if standardize is None else np.asarray(standardize, bool)
        if self.gram is None:
            return self._solve_rows(std_mask, alphas, device)  # N <= max_rows: the N×N Gram
        assert self.shift is not None
        n = self.n
        mean = self.shift + self.s1 / n
        centred, self.gram = self.gram, None  # in place, by row blocks (no F x F temporaries): the sums are spent
        for i in range(0, self.num_features, 1024):
            centred[i : i + 1024] -= np.outer(self.s1[i : i + 1024] / n, self.s1)
        scale = _scale(np.diag(centred) / n, std_mask)
        cross = (self.xty - np.outer(self.s1, self.ysum) / n) / scale[:, None]
        yc2 = float(n * self.num_classes - (self.ysum**2).sum() / n)  # Σ y² = n per class for ±1 targets
        for i in range(0, self.num_features, 1024):
            centred[i : i + 1024] /= np.outer(scale[i : i + 1024], scale)  # S; its eigenvectors take as much again
        d, q, expand = _eig_projected(centred, cross, device)
        del centred
        best = _gcv(d, q**2, yc2, n, alphas)
        coef = expand(q / (d + best["alpha"])[:, None])
        return {"mean": mean, "scale": scale, "coef": coef.T, "intercept": self.ysum / n, **best}

    def _solve_rows(self, std_mask: np.ndarray, alphas: tuple[float, ...], device: Any) -> dict[str, Any]:
        rows = sorted(self.rows, key=lambda r: r[0])
        t = self._targets(np.concatenate([y for _, _, y in rows]))
        n, f = len(t), self.num_features
        mean, scale = np.zeros(f), np.ones(f)

        def block(lo: int, hi: int) -> np.ndarray:  # feature columns lo:hi of every case, float64
            return np.concatenate([r[1][:, lo:hi] for r in rows]).astype(np.float64)

        gram = np.zeros((n, n))
        for lo in range(0, f, BLOCK):  # standardized by column blocks: no float64 copy of all features
            hi = min(lo + BLOCK, f)
            z = block(lo, hi)
            mean[lo:hi] = z.mean(0)
            z -= mean[lo:hi]
            scale[lo:hi] = _scale((z**2).mean(0), std_mask[lo:hi])
            z /= scale[lo:hi]
            _syrk_upper(gram, z, trans=1)
        tc = t - t.mean(0)
        if n <= LOO_MAX_ROWS:  # U itself (n²): each case's leave-one-out error, RidgeClassifierCV's criterion
            d, u = _eigh(gram, device)
            proj = u.T @ tc
            best = _loo(d, u, proj, tc, alphas)
            v = u @ (proj / (d + best["alpha"])[:, None])
        else:
            d, proj, expand = _eig_projected(gram, tc, device)  # proj = Uᵀ Yc (n, K)
            # in the N×N basis q² = d·proj² and ‖Yc‖² = Σ proj²: the primal formulas, unchanged
            best = _gcv(d, d[:, None] * proj**2, float((proj**2).sum()), n, alphas)
            v = expand(proj / (d + best["alpha"])[:, None])  # U (proj / (d + α)), (n, K)
        del gram
        coef = np.empty((f, self.num_classes))
        for lo in range(0, f, BLOCK):
            hi = min(lo + BLOCK, f)
            coef[lo:hi] = ((block(lo, hi) - mean[lo:hi]) / scale[lo:hi]).T @ v
        return {"mean": mean, "scale": scale, "coef": coef.T, "intercept": t.mean(0), **best}


def _syrk_upper(c: np.ndarray, a: np.ndarray, trans: int) -> None:
    """c += aᵀa (trans=0, a (B, F)) or a aᵀ (trans=1, a (N, B)), in place, upper triangle of C-ordered c only."""
    from scipy.linalg import blas

    a = np.asarray(a, dtype=np.float64)
    # C-ordered c is Fortran-ordered cᵀ, whose lower triangle is c's upper one; aᵀ is Fortran-ordered a
    out = blas.dsyrk(1.0, np.ascontiguousarray(a).T, beta=1.0, c=c.T, trans=trans, lower=1, overwrite_c=1)
    if not np.shares_memory(out, c):  # a BLAS wrapper that copied: write the result back
        c[...] = out.T


def _scale(var: np.ndarray, std_mask: np.ndarray) -> np.ndarray:
    """StandardScaler's scale (std; 1 where the variance is ~0) where std_mask, else 1."""
    var = np.maximum(var, 0.0)
    std = np.sqrt(var)
    std[std < 10 * np.finfo(np.float64).eps] = 1.0
    return np.where(std_mask, std, 1.0)


def _eigh(a: np.ndarray, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (clipped at 0: S is positive semi-definite) and eigenvectors of symmetric `a` (overwritten).

    Only `a`'s upper triangle is read: the lower one is never formed.
    """
    import scipy.linalg

    if device is not None and torch.device(device).type == "cuda":
        d_t, v_t = torch.linalg.eigh(torch.from_numpy(a).to(device), UPLO="U")
        return np.maximum(d_t.cpu().numpy(), 0.0), v_t.cpu().numpy()
    d, v = scipy.linalg.eigh(a, lower=False, overwrite_a=True, check_finite=False, driver="evr")
    return np.maximum(d, 0.0), v


def _eig_projected(a: np.ndarray, c: np.ndarray, device: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """(eigenvalues d, Vᵀc, y -> V y) of symmetric `a` = V diag(d) Vᵀ (upper triangle read, overwritten).

    On the CPU without forming V: a = Q T Qᵀ (LAPACK dsytrd, Householder reflectors kept in `a`),
    T = W diag(d) Wᵀ (MRRR, or divide and conquer where it fails), so Vᵀc = Wᵀ(Qᵀc) and V y = Q(W y) with the reflectors
    applied to K columns only: half the work of a full eigendecomposition, which forms V = Q W.
    """
    if device is not None and torch.device(device).type == "cuda":
        d, v = _eigh(a, device)
        return d, v.T @ c, lambda y: v @ y
    from scipy.linalg import eigh_tridiagonal, lapack

    f = a.shape[0]
    if f < 3:
        d, v = _eigh(a, None)
        return d, v.T @ c, lambda y: v @ y
    lwork = int(lapack.dsytrd_lwork(f, lower=1)[0])
    # a is symmetric: its transpose is the same matrix in Fortran order, handed over without a copy
    refl, diag, off, tau, info = lapack.dsytrd(a.T, lower=1, lwork=max(lwork, f), overwrite_a=1)
    if info != 0:
        raise ValueError(f"data: the tridiagonal reduction of the features' Gram failed (LAPACK info {info})")
    try:
        d, w = eigh_tridiagonal(diag, off, lapack_driver="stemr")  # MRRR: no workspace beyond W
    except np.linalg.LinAlgError:  # MRRR can fail on large clusters (many zero eigenvalues: N < F)
        d, w, info = lapack.dstevd(diag, off, compute_v=1)  # divide and conquer: sure, F² more workspace
        if info != 0:
            raise ValueError(
                f"data: the eigendecomposition of the features' Gram failed (LAPACK info {info})"
            ) from None

    def reflect(y: np.ndarray, order: range) -> np.ndarray:
        y = np.array(y, dtype=np.float64)
        for i in order:  # H_i = I - tau_i v vᵀ, v = (0.., 1, refl[i+2:, i]) from row i+1
            v = np.concatenate(([1.0], refl[i + 2 :, i]))
            y[i + 1 :] -= tau[i] * np.outer(v, v @ y[i + 1 :])
        return y

    qtc = reflect(c, range(f - 1))  # Qᵀ c = H_{f-1} .. H_1 c
    return np.maximum(d, 0.0), w.T @ qtc, lambda y: reflect(w @ y, range(f - 2, -1, -1))


def _loo(d: np.ndarray, u: np.ndarray, proj: np.ndarray, tc: np.ndarray, alphas: tuple[float, ...]) -> dict[str, Any]:
    """The alpha of least mean squared leave-one-out error, exactly as RidgeClassifierCV scores it.

    Ridge with an unpenalized intercept is a linear smoother, H = 11ᵀ/n + U diag(d/(d+α)) Uᵀ, so the
    leave-one-out residual of case i is r_i / (1 - H_ii), with r = Yc - U diag(d/(d+α)) Uᵀ Yc.
    """
    n = len(tc)
    u2 = u**2
    scores = []
    for a in alphas:
        shrink = d / (d + a)
        resid = tc - u @ (shrink[:, None] * proj)
        lever = 1.0 / n + u2 @ shrink
        scores.append(float(np.mean((resid / np.maximum(1.0 - lever, 1e-12)[:, None]) ** 2)))
    k = int(np.argmin(scores))
    return {"alpha": float(alphas[k]), "criterion": "loo", "cv_scores": scores}


def _gcv(d: np.ndarray, q2: np.ndarray, yc2: float, n: int, alphas: tuple[float, ...]) -> dict[str, Any]:
    """The alpha of least GCV (leave-one-out's rotation-invariant approximation) and every alpha's GCV; q2 (F, K): squared projections of Zᵀ Yc on the eigenvectors."""
    scores = []
    q2sum = q2.sum(1)
    for a in alphas:
        rss = max(yc2 - float((q2sum * (d + 2 * a) / (d + a) ** 2).sum()), 0.0)
        dof = 1.0 + float((d / (d + a)).sum())
        scores.append((rss / n) / max(1.0 - dof / n, 1e-12) ** 2)
    k = int(np.argmin(scores))
    return {"alpha": float(alphas[k]), "criterion": "gcv", "cv_scores": [float(s) for s in scores]}
