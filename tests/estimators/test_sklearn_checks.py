"""scikit-learn's own estimator checks over both estimators (tiny sizes so the whole suite stays fast)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from archkit.estimators import FunctionRegressor, LSTMClassifier
from archkit.estimators.sequence import EXPECTED_FAILED_CHECKS


def tiny_classifier(**kw) -> LSTMClassifier:
    return LSTMClassifier(
        **{
            **dict(
                hidden=8, frontend="none", fcn_channels=0, dropout=0.0, epochs=8, batch_size=32, lr=2e-2, random_state=0
            ),
            **kw,
        }
    )


def tiny_regressor(**kw) -> FunctionRegressor:
    return FunctionRegressor(**{**dict(hidden=8, layers=1, max_steps=40, random_state=0), **kw})


def expected_failures(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS if isinstance(estimator, LSTMClassifier) else {}


@parametrize_with_checks(
    [tiny_classifier(), tiny_regressor()], expected_failed_checks=expected_failures, xfail_strict=True
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
