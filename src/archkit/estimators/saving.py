"""Save / load fitted sequence estimators without pickle: safetensors + a JSON config in a folder.

    clf.save("model/")                       # RocketClassifier, LSTMClassifier, AutoSequenceClassifier
    clf = RocketClassifier.load("model/")    # or archkit.estimators.load_estimator("model/"): nothing unpickled

A RocketClassifier folder holds `estimator.safetensors` (the transforms' fitted buffers: MiniRocket,
MultiRocket, Hydra; the scalers' mean and scale; the head's coef and intercept) and `estimator.json`
(the parameters, classes, head kind and the SHA-256 of the tensors file, checked before loading).
An LSTMClassifier folder holds its network as an archkit checkpoint (`checkpoint/`) beside the same
pair for its channel statistics. An AutoSequenceClassifier is saved as its chosen `best_estimator_`
plus the cross-validation results in the JSON. The estimators still pickle, for scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, atomic_write_json

TENSORS = "estimator.safetensors"
CONFIG = "estimator.json"
FORMAT = "archkit-estimator"
VERSION = 1


class LinearHead:
    """A fitted linear classifier (coef_, intercept_, classes_) that predicts as scikit-learn's linear models.

    `kind` "ridge" or "logistic" (probabilities: sigmoid for two classes, else softmax); two classes
    have one row of coefficients, scoring classes_[1], as RidgeClassifier and LogisticRegression.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, kind: str) -> None:
        self.coef_, self.intercept_, self.classes_, self.kind = coef, intercept, classes, kind

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        scores = x @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, x: np.ndarray) -> np.ndarray:
        scores = self.decision_function(x)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        scores = self.decision_function(x)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.stack([1 - p, p], 1)
        scores = scores - scores.max(1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(1, keepdims=True)


def _classes_json(classes: np.ndarray) -> dict[str, Any]:
    values = classes.tolist()
    if not all(isinstance(v, (int, float, str, bool)) for v in values):
        raise ValueError(
            f"classes_: only int, float, str or bool labels can be saved without pickle, got {type(values[0]).__name__}"
        )
    return {"values": values, "dtype": classes.dtype.str if classes.dtype != object else "object"}


def _write(folder: Path, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TENSORS
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    config = {"format": FORMAT, "version": VERSION, **config, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    atomic_write_json(folder / CONFIG, config)  # last: a folder with a config has its tensors


def _read(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, path = folder / CONFIG, folder / TENSORS
    if not cfg_path.is_file() or not path.is_file():
        missing = [p.name for p in (cfg_path, path) if not p.is_file()]
        raise FileNotFoundError(f"path: {str(folder)!r} is not a saved archkit estimator (missing {missing})")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"path: {str(cfg_path)!r} is not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ValueError(f"path: {str(cfg_path)!r} is not an {FORMAT} config of version {VERSION}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != config.get("sha256"):
        raise ValueError(f"path: {str(path)!r} does not match the SHA-256 in {CONFIG} (changed or corrupt)")
    return load_file(str(path)), config


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


# ----------------------------------------------------------------------------------------------
def _module_state(prefix: str, module: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    # cloned: MultiRocket's two parts share their channel buffers, which safetensors refuses to save twice
    return {} if module is None else {f"{prefix}.{k}": v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_rocket(est: Any, folder: Path) -> None:
    """RocketClassifier -> folder (see the module docstring)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    tensors = {**_module_state("transform", est.transform_), **_module_state("hydra", est.hydra_)}
    tensors.update(_module_state("hydra_scaler", est.hydra_scaler_))
    if est.scaler_ is not None:
        mean = est.scaler_.mean_ if est.scaler_.with_mean else np.zeros_like(est.scaler_.scale_)
        tensors["scaler.mean"] = torch.from_numpy(np.asarray(mean).copy())
        tensors["scaler.scale"] = torch.from_numpy(np.asarray(est.scaler_.scale_).copy())
    tensors["head.coef"] = torch.from_numpy(np.atleast_2d(np.asarray(est.head_.coef_)).copy())
    tensors["head.intercept"] = torch.from_numpy(np.atleast_1d(np.asarray(est.head_.intercept_)).copy())
    transform = est.transform_
    config = {
        "estimator": "RocketClassifier",
        "params": est.get_params(),
        "classes": _classes_json(np.asarray(est.classes_)),
        "head_kind": est.head_kind_,
        "n_features_in": est.n_features_in_,
        "n_timepoints": est.n_timepoints_,
        "transform": None
        if transform is None
        else {"kind": type(transform).__name__, "in_channels": transform.in_channels, "method": transform.method},
        "hydra": None
        if est.hydra_ is None
        else {"in_channels": est.hydra_.in_channels, "num_kernels": est.hydra_.num_kernels},
        "fit_info": getattr(est, "fit_info_", None),
    }
    _write(folder, tensors, config)


def _rocket_from(cls: type, tensors: dict[str, torch.Tensor], config: dict[str, Any], where: str) -> Any:
    from sklearn.preprocessing import StandardScaler

    from ..layers.hydra import Hydra, SparseScaler
    from ..layers.multirocket import MultiRocket
    from ..layers.rocket import MiniRocket

    try:
        est = cls(**config["params"])
        est._check_params()
        spec, hspec = config["transform"], config["hydra"]
        est.transform_ = None
        if spec is not None:
            part = _part(tensors, "transform")
            if spec["kind"] == "MiniRocket":
                est.transform_ = MiniRocket.from_state_dict(part, spec["in_channels"], spec["method"])
            elif spec["kind"] == "MultiRocket":
                est.transform_ = MultiRocket(
                    MiniRocket.from_state_dict(_part(part, "series"), spec["in_channels"], spec["method"]),
                    MiniRocket.from_state_dict(_part(part, "difference"), spec["in_channels"], spec["method"]),
                )
            else:
                raise ValueError(f"transform kind {spec['kind']!r} unknown")
        est.hydra_ = est.hydra_scaler_ = None
        if hspec is not None:
            h = _part(tensors, "hydra")
            est.hydra_ = Hydra(
                hspec["in_channels"], h["dilations"], h["weights"], h["channel_indices"], hspec["num_kernels"]
            )
            est.hydra_scaler_ = SparseScaler(tensors["hydra_scaler.mean"], tensors["hydra_scaler.scale"])
        est.scaler_ = None
        if "scaler.mean" in tensors:
            scaler = StandardScaler()
            scaler.mean_, scaler.scale_ = _np(tensors["scaler.mean"]), _np(tensors["scaler.scale"])
            scaler.var_ = scaler.scale_**2
            scaler.n_features_in_ = len(scaler.mean_)
            scaler.n_samples_seen_ = 0
            est.scaler_ = scaler
        classes = np.array(config["classes"]["values"], dtype=config["classes"]["dtype"])
        if config["head_kind"] not in ("ridge", "logistic"):
            raise ValueError(f"head_kind {config['head_kind']!r} unknown")
        coef, intercept = _np(tensors["head.coef"]), _np(tensors["head.intercept"])
        est.head_ = LinearHead(coef, intercept, classes, config["head_kind"])
        est.head_kind_, est.classes_ = config["head_kind"], classes
        est.n_features_in_, est.n_timepoints_ = int(config["n_features_in"]), config["n_timepoints"]
        if config.get("fit_info") is not None:
            est.fit_info_ = config["fit_info"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"path: {where!r} holds an inconsistent RocketClassifier ({type(e).__name__}: {e})") from None
    return est


# ----------------------------------------------------------------------------------------------
def save_lstm(est: Any, folder: Path) -> None:
    """LSTMClassifier -> folder: its network as an archkit checkpoint, the channel statistics as tensors."""
    from sklearn.utils.validation import check_is_fitted

    from ..io import save_checkpoint

    check_is_fitted(est)
    save_checkpoint(folder / "checkpoint", est.model_, est.model_.config)
    tensors = {}
    if est.channel_mean_ is not None:
        tensors = {
            "channel_mean": torch.from_numpy(est.channel_mean_),
            "channel_scale": torch.from_numpy(est.channel_scale_),
        }
    config = {
        "estimator": "LSTMClassifier",
        "params": est.get_params(),
        "classes": _classes_json(np.asarray(est.classes_)),
        "n_features_in": est.n_features_in_,
        "n_timepoints": est.n_timepoints_,
    }
    _write(folder, tensors, config)


def _lstm_from(cls: type, tensors: dict[str, torch.Tensor], config: dict[str, Any], folder: Path) -> Any:
    from ..loading import load_model

    try:
        est = cls(**config["params"])
        est.model_ = load_model(folder / "checkpoint")
        est.classes_ = np.array(config["classes"]["values"], dtype=config["classes"]["dtype"])
        est.n_features_in_, est.n_timepoints_ = int(config["n_features_in"]), config["n_timepoints"]
        est.channel_mean_ = _np(tensors["channel_mean"]) if "channel_mean" in tensors else None
        est.channel_scale_ = _np(tensors["channel_scale"]) if "channel_scale" in tensors else None
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"path: {str(folder)!r} holds an inconsistent LSTMClassifier ({type(e).__name__}: {e})"
        ) from None
    return est


# ----------------------------------------------------------------------------------------------
def save_estimator(est: Any, path: str | Path) -> Path:
    """Save a fitted RocketClassifier, LSTMClassifier or AutoSequenceClassifier to folder `path`; returns it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path: {str(folder)!r} exists and is not a folder")
    name = type(est).__name__
    if name == "RocketClassifier":
        save_rocket(est, folder)
    elif name == "LSTMClassifier":
        save_lstm(est, folder)
    elif name == "AutoSequenceClassifier":
        best = est.best_estimator_
        save_estimator(best, folder / "best")
        params = est.get_params()
        if isinstance(params.get("candidates"), dict):  # estimators given by the user: their names only
            params["candidates"] = list(params["candidates"])
        config = {
            "estimator": name,
            "params": params,
            "best_name": est.best_name_,
            "tied_with": est.tied_with_,
            "n_splits": est.n_splits_,
            "cv_results": est.cv_results_,
            "n_features_in": est.n_features_in_,
        }
        _write(folder, {}, config)
    else:
        raise ValueError(f"est: expected a RocketClassifier, LSTMClassifier or AutoSequenceClassifier, got {name}")
    return folder


def load_folder(path: str | Path, classes: dict[str, type], expected: str | None = None) -> Any:
    """The estimator `save_estimator` wrote to folder `path` (nothing unpickled), built from `classes` by name.

    `expected`: the class name it must hold. (archkit.estimators.persist.load_estimator passes every class.)
    """
    folder = Path(path)
    tensors, config = _read(folder)
    name = config.get("estimator")
    if expected is not None and name != expected:
        raise ValueError(f"path: {str(folder)!r} holds a {name}, not a {expected}")
    if name not in classes:
        raise ValueError(f"path: {str(folder / CONFIG)!r} names an estimator this call cannot build: {name!r}")
    cls = classes[name]
    if name == "RocketClassifier":
        return _rocket_from(cls, tensors, config, str(folder))
    if name == "LSTMClassifier":
        return _lstm_from(cls, tensors, config, folder)
    try:
        est = cls(**config["params"])
        est.best_estimator_ = load_folder(folder / "best", classes)
        est.best_name_, est.tied_with_ = config["best_name"], config["tied_with"]
        est.n_splits_, est.cv_results_ = config["n_splits"], config["cv_results"]
        est.classes_, est.n_features_in_ = est.best_estimator_.classes_, int(config["n_features_in"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"path: {str(folder)!r} holds an inconsistent {name} ({type(e).__name__}: {e})") from None
    return est
