"""scikit-learn estimators over archkit models: fit/predict/score, GridSearchCV- and Pipeline-ready."""

from .auto import AutoSequenceClassifier
from .function import FunctionRegressor
from .persist import load_estimator, save_estimator
from .rocket import RocketClassifier, RocketModule
from .sequence import LSTMClassifier
from .series import as_padded_series

__all__ = [
    "AutoSequenceClassifier",
    "FunctionRegressor",
    "LSTMClassifier",
    "RocketClassifier",
    "RocketModule",
    "as_padded_series",
    "load_estimator",
    "save_estimator",
]
