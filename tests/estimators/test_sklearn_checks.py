"""scikit-learn's own estimator checks over the estimators (tiny sizes so the whole suite stays fast)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from archkit.estimators import AutoSequenceClassifier, FunctionRegressor, LSTMClassifier, RocketClassifier
from archkit.estimators.auto import EXPECTED_FAILED_CHECKS as AUTO_CHECKS
from archkit.estimators.sequence import EXPECTED_FAILED_CHECKS

TINY_LSTM = dict(
    hidden=8, frontend="none", fcn_channels=0, dropout=0.0, epochs=8, batch_size=32, lr=2e-2, random_state=0
)


def tiny_classifier(**kw) -> LSTMClassifier:
    return LSTMClassifier(**{**TINY_LSTM, **kw})


def tiny_regressor(**kw) -> FunctionRegressor:
    return FunctionRegressor(**{**dict(hidden=8, layers=1, max_steps=40, random_state=0), **kw})


def tiny_auto() -> AutoSequenceClassifier:
    """A ROCKET and an LSTM with a conv front end as candidates, both small."""
    lstm_conv = LSTMClassifier(**{**TINY_LSTM, "frontend": "conv", "conv_channels": 8, "conv_kernel": 3})
    rocket = RocketClassifier(num_features=84 * 4, random_state=0)
    cands = {"rocket": rocket, "lstm-conv": lstm_conv}
    return AutoSequenceClassifier(candidates=cands, cv=2, max_cv_cost=None, random_state=0)  # no time limit


def expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, AutoSequenceClassifier):
        return AUTO_CHECKS
    return EXPECTED_FAILED_CHECKS if isinstance(estimator, LSTMClassifier) else {}


@parametrize_with_checks(
    [tiny_classifier(), tiny_regressor(), tiny_auto()], expected_failed_checks=expected_failures, xfail_strict=True
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
