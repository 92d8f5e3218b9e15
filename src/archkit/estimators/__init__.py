"""scikit-learn estimators over archkit models: fit/predict/score, GridSearchCV- and Pipeline-ready."""

from .function import FunctionRegressor
from .sequence import LSTMClassifier
from .series import as_padded_series

__all__ = ["FunctionRegressor", "LSTMClassifier", "as_padded_series"]
