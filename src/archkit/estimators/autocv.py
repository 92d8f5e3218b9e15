"""The cross-validation behind AutoSequenceClassifier: a bounded stratified subsample, shared ROCKET transforms, the one-SE rule.

- `stratified_subsample`: at most `max_cases` cases, every class kept in proportion (at least 2 cases
  each, so stratified folds exist), in their original order.
- `cross_validate`: one candidate over given folds. A `RocketClassifier` is fitted ONCE on all the CV
  cases and only its linear head is refitted per fold, on the features that fit computed: the kernels'
  biases and the feature scales then come from every CV case's series (never from a label), a small,
  label-free leak into the validation folds, taken because the transform is the whole cost of a ROCKET
  fit (k folds cost one transform instead of k). Other estimators are cloned and fitted per fold, and
  stop before a fold once they can no longer change the choice (`stop_rule`: the choice is the same
  without them) or the fold would overrun a time budget; one with `epochs` is first timed on one epoch.
- `choose`: Breiman's one-standard-error rule on the out-of-fold accuracy (each CV case is predicted
  once, by the fold that left it out): among the candidates within one standard error
  sqrt(a (1 - a) / n) of the best accuracy a, the one with the lowest fit cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone


def stratified_subsample(y: np.ndarray, max_cases: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `max_cases` cases of y, classes in proportion, each class at least 2 cases (if it has them)."""
    n = len(y)
    if n <= max_cases:
        return np.arange(n)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    floor = np.minimum(counts, 2)
    if floor.sum() > max_cases:
        raise ValueError(
            f"max_cv_cases: expected at least 2 cases per class ({int(floor.sum())} for {len(classes)} classes), "
            f"got {max_cases}"
        )
    share = counts * max_cases / n
    quota = np.maximum(floor, np.floor(share).astype(np.int64))
    while quota.sum() > max_cases:  # the 2-per-class floor took slots: give them back from the largest classes
        quota[np.argmax(np.where(quota > floor, quota, -1))] -= 1
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):  # leftover slots: largest remainders first
        if quota.sum() >= max_cases:
            break
        quota[c] += quota[c] < counts[c]
    rng = np.random.RandomState(seed)
    picked = [rng.choice(np.flatnonzero(inverse == c), int(q), replace=False) for c, q in enumerate(quota)]
    return np.sort(np.concatenate(picked))


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on n cases."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n)


def cross_validate(
    est: BaseEstimator,
    data: Any,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    take: Callable[[Any, np.ndarray], Any],
    stop: Callable[[int, int, float], bool] | None = None,
    budget_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], BaseEstimator | None]:
    """(CV record, the estimator fitted on all of data when the folds shared one fit, else None).

    The record: fold_accuracy, mean, std (over folds), accuracy (out-of-fold, over the cases seen), fit_s (mean
    seconds of a fit as the CV ran it; a shared ROCKET fit counts whole: it saw every case), cv_s (seconds
    spent in all), folds_run, stopped: None, or why it stopped before its last fold: "cannot change the
    choice" (`stop(correct, seen, fit_s)`) or "budget" (the next fold would take it past `budget_s` seconds).
    An estimator with an `epochs` parameter is first fitted for one epoch on the first fold's training cases:
    that time, a lower bound of a fold's fit, stands for its fit_s until a fold has run, so both stops can
    act before the first fold (folds_run 0) without ever stopping a candidate that would not have been
    stopped after it. A `RocketClassifier` always runs (one fit); another candidate with no budget left
    (`budget_s` <= 0) does not start.
    """
    from .rocket import RocketClassifier

    start = time.perf_counter()
    correct = seen = 0
    scores: list[float] = []
    times: list[float] = []
    shared: BaseEstimator | None = None
    feats: np.ndarray | None = None
    projected: float | None = None
    stopped: str | None = None
    if isinstance(est, RocketClassifier):
        shared = clone(est)
        t0 = time.perf_counter()
        feats = _fit_keeping_features(shared, data, y)
        times.append(time.perf_counter() - t0)
    elif budget_s is not None and budget_s <= 0:
        splits = []
        stopped = "budget"
    elif (stop is not None or budget_s is not None) and _epochs(est) > 1:
        t0 = time.perf_counter()
        clone(est).set_params(epochs=1).fit(take(data, splits[0][0]), y[splits[0][0]])
        projected = time.perf_counter() - t0
        if log is not None:
            log(f"one epoch: {projected:.1f}s (a fold fits {_epochs(est)} epochs)")
    for k, (tr, va) in enumerate(splits):
        fit_s = float(np.mean(times)) if times else projected
        if shared is None and fit_s is not None:
            if stop is not None and stop(correct, seen, fit_s):
                stopped = "cannot change the choice"
            elif budget_s is not None and time.perf_counter() - start + fit_s > budget_s:
                stopped = "budget"
            if stopped:
                break
        if shared is not None and feats is not None:
            head = clone(shared.head_).fit(feats[tr], y[tr])
            pred = head.predict(feats[va])
        else:
            model = clone(est)
            t0 = time.perf_counter()
            model.fit(take(data, tr), y[tr])
            times.append(time.perf_counter() - t0)
            pred = model.predict(take(data, va))
        hits = int(np.sum(np.asarray(pred) == y[va]))
        correct, seen = correct + hits, seen + len(va)
        scores.append(hits / len(va))
        if log is not None:
            log(f"fold {k + 1}/{len(splits)}: accuracy {scores[-1]:.4f} ({time.perf_counter() - start:.1f}s so far)")
    if stopped and log is not None:
        log(f"stopped after {len(scores)} folds: {stopped}")
    record = {
        "fold_accuracy": scores,
        "mean": float(np.mean(scores)) if scores else 0.0,
        "std": float(np.std(scores)) if scores else 0.0,
        "accuracy": correct / seen if seen else 0.0,
        "fit_s": float(np.mean(times)) if times else float(projected or 0.0),
        "cv_s": time.perf_counter() - start,
        "folds_run": len(scores),
        "stopped": stopped,
    }
    return record, shared


def _epochs(est: BaseEstimator) -> int:
    epochs = est.get_params().get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 0


def _fit_keeping_features(est: Any, data: Any, y: np.ndarray) -> np.ndarray:
    """Fit a RocketClassifier on (data, y) and return its head's input for data, computed once by that fit."""
    compute = est._features
    kept: list[Any] = []

    def keep(x: np.ndarray, lengths: np.ndarray | None) -> Any:
        kept.append(compute(x, lengths))
        return kept[-1]

    setattr(est, "_features", keep)  # noqa: B010 (this fit only: the instance attribute goes right after)
    try:
        est.fit(data, y)
    finally:
        delattr(est, "_features")
    if len(kept) != 1 or len(next(f for f in kept[0] if f is not None)) != len(y):
        x, lengths, *_ = est._series(data)  # the fit computed its features otherwise (in parts): compute them again
        kept = [est._features(x, lengths)]
    return np.asarray(est._scaled(*kept[0]))


def stop_rule(results: dict[str, dict[str, Any]], n: int) -> Callable[[int, int, float], bool] | None:
    """When a candidate, after some folds (`correct` of `seen` CV cases right, `fit_s` a fit), can no longer change the choice.

    Either even with every remaining case right it stays more than one SE below the best finished accuracy
    (so it is never the best, nor within one SE of it), or it is dearer than the candidate chosen so far and
    cannot get more than one SE above that one (so that one stays within one SE and cheaper). Both hold
    exactly where the accuracies involved are >= 0.5 (a - SE(a) grows there); below, no candidate stops.
    """
    done = {name: r for name, r in results.items() if not r["stopped"]}
    if not done:
        return None
    best = max(r["accuracy"] for r in done.values())
    chosen = done[choose(done, n)[0]]
    if best < 0.5:
        return None

    def stop(correct: int, seen: int, fit_s: float) -> bool:
        reach = (correct + n - seen) / n  # the accuracy if every case still to be seen were right
        if reach < best - standard_error(best, n):
            return True
        lifted = reach - standard_error(reach, n)
        return chosen["accuracy"] >= 0.5 and fit_s > chosen["fit_s"] and lifted <= chosen["accuracy"]

    return stop


def choose(results: dict[str, dict[str, Any]], n: int) -> tuple[str, list[str]]:
    """(chosen, the others within one standard error of the best): the cheapest (fit_s) within one SE of the best accuracy.

    Candidates stopped early are never within (they could not reach it); equal costs go to the higher accuracy,
    then to the earlier candidate.
    """
    done = {name: r for name, r in results.items() if not r["stopped"]}
    best = max(r["accuracy"] for r in done.values())
    bar = best - standard_error(best, n) - 1e-12
    near = [name for name, r in done.items() if r["accuracy"] >= bar]
    order = list(results)
    chosen = min(near, key=lambda m: (done[m]["fit_s"], -done[m]["accuracy"], order.index(m)))
    return chosen, [m for m in near if m != chosen]
