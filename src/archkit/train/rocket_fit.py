"""Passes of a streamed ROCKET fit: features batch by batch into a sink, saved every so many batches, resumable.

    run_pass("ridge", data, features_fn, RidgeStats(F, K), state_dir=run / "fit_state")

Each pass reads the data's batches in order (under torchrun every rank takes every world_size-th batch,
as `transform_shards`), turns each into features (`features_fn(x (B, C, T), lengths)`) and hands them
to a sink: `RidgeStats` (the ridge's sums), `SparseMoments` (Hydra's scaler), `FeatureFile` (the
features written to a .npy for the logistic head). Every `every` batches the sink's state and the
number of batches done are saved atomically (safetensors + JSON, one pair per rank); a rerun with the
same state folder continues after the last saved batch. A tqdm bar shows cases/s and the ETA.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.sequences import PlannedBatches, SequenceData, sequence_loader
from ..io import atomic_write, atomic_write_json
from .accelerate import Accelerator
from .rocket import _dist, _npy_header

Hook = Callable[[str, int], None]  # (pass name, batches done on this rank): called after every batch


class Sink(Protocol):
    """What a pass feeds: batches of features, and a state to save and resume from."""

    def update(self, features: np.ndarray, y: np.ndarray, batch: int) -> None: ...

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...


class SparseMoments:
    """Hydra's SparseScaler statistics (archkit.layers.hydra) from streamed Hydra features, float64, shifted."""

    def __init__(self, num_features: int) -> None:
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1 = np.zeros(num_features)
        self.s2 = np.zeros(num_features)
        self.zeros = np.zeros(num_features)

    def update(self, features: np.ndarray, y: np.ndarray, batch: int) -> None:
        r = np.sqrt(np.clip(features.astype(np.float64), 0, None))
        if self.shift is None:
            self.shift = r.mean(0)
        c = r - self.shift
        self.n += len(r)
        self.s1 += c.sum(0)
        self.s2 += (c**2).sum(0)
        self.zeros += (r == 0).sum(0)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        shift = np.zeros_like(self.s1) if self.shift is None else self.shift
        tensors = {"shift": shift, "s1": self.s1, "s2": self.s2, "zeros": self.zeros}
        return {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, {"n": self.n}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.n = int(meta["n"])
        self.s1, self.s2, self.zeros = (tensors[k].numpy().copy() for k in ("s1", "s2", "zeros"))
        self.shift = tensors["shift"].numpy().copy() if self.n else None

    def all_reduce(self) -> None:
        """Sum the ranks' statistics (each re-expressed around rank 0's shift first)."""
        _, world = _dist()
        if world == 1:
            return
        parts: list[Any] = [None] * world
        torch.distributed.all_gather_object(parts, (self.n, self.shift))
        common = next((s for n, s in parts if n > 0), None)
        if common is None:
            return
        if self.shift is not None:
            delta = self.shift - common
            self.s2 += 2 * delta * self.s1 + self.n * delta**2
            self.s1 += self.n * delta
        self.shift = np.asarray(common, np.float64).copy()
        for name in ("s1", "s2", "zeros"):
            t = torch.from_numpy(getattr(self, name))
            torch.distributed.all_reduce(t)
            setattr(self, name, t.numpy())
        n = torch.tensor([self.n], dtype=torch.int64)
        torch.distributed.all_reduce(n)
        self.n = int(n.item())

    def scaler(self, exponent: int = 4) -> Any:
        """The SparseScaler `SparseScaler.fit` gives on all the features: mean, sample std + zero share^4 + 1e-8."""
        from ..layers.hydra import SparseScaler

        if self.n < 1 or self.shift is None:
            raise ValueError("data: the Hydra scaler needs at least one case")
        mean = self.shift + self.s1 / self.n
        var = (self.s2 - self.s1**2 / self.n) / max(self.n - 1, 1) if self.n > 1 else np.zeros_like(self.s1)
        eps = (self.zeros / self.n) ** exponent + 1e-8
        return SparseScaler(mean.astype(np.float32), (np.sqrt(np.maximum(var, 0)) + eps).astype(np.float32))


class FeatureFile:
    """A (N, F) float32 .npy written batch by batch at each batch's rows (positioned writes; rows of any rank)."""

    def __init__(self, path: Path, starts: np.ndarray, n: int, num_features: int) -> None:
        self.path, self.starts, self.num_features = path, starts, num_features
        self.header = _npy_header((n, num_features))
        self.size = len(self.header) + n * num_features * 4
        rank, world = _dist()
        if rank == 0 and not (path.is_file() and path.stat().st_size == self.size):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:  # archkit's own cache in the run folder's fit state
                f.write(self.header)
                f.truncate(self.size)
        if world > 1:
            torch.distributed.barrier()
        self.fd = os.open(path, os.O_WRONLY)

    def update(self, features: np.ndarray, y: np.ndarray, batch: int) -> None:
        block = np.ascontiguousarray(features, dtype="<f4").tobytes()
        os.pwrite(self.fd, block, len(self.header) + int(self.starts[batch]) * self.num_features * 4)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        os.fsync(self.fd)  # rows reported done are on disk
        return {}, {"path": self.path.name}

    def close(self) -> None:
        os.close(self.fd)


def _state_files(state_dir: Path, name: str) -> tuple[Path, Path]:
    rank, _ = _dist()
    return state_dir / f"{name}.rank{rank}.safetensors", state_dir / f"{name}.rank{rank}.json"


def save_state(state_dir: Path, name: str, sink: Sink, done: int, key: dict[str, Any], complete: bool) -> None:
    """The sink's state and the batches done, atomically: the tensors first, then the JSON naming their SHA-256."""
    from safetensors.torch import save_file

    tensors, meta = sink.state_dict()
    tensor_path, json_path = _state_files(state_dir, name)
    atomic_write(tensor_path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp))
    digest = hashlib.sha256(tensor_path.read_bytes()).hexdigest()
    info = {"batches_done": done, "complete": complete, "key": key, "meta": meta, "sha256": digest}
    atomic_write_json(json_path, info)


def load_state(
    state_dir: Path, name: str, key: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, info) saved for this pass and fit, None when there is none; another fit's state is refused."""
    from safetensors.torch import load_file

    tensor_path, json_path = _state_files(state_dir, name)
    if not json_path.is_file():
        return None
    info = json.loads(json_path.read_text())
    if info.get("key") != key:
        raise ValueError(
            f"resume: {str(json_path)!r} belongs to another fit (other data, settings or number of processes); "
            f"choose a new --out"
        )
    if not tensor_path.is_file() or hashlib.sha256(tensor_path.read_bytes()).hexdigest() != info.get("sha256"):
        raise ValueError(
            f"resume: {str(tensor_path)!r} is missing or does not match {json_path.name}; choose a new --out"
        )
    return load_file(str(tensor_path)), info


def run_pass(
    name: str,
    data: SequenceData,
    features_fn: Callable[[torch.Tensor, torch.Tensor | None], np.ndarray],
    sink: Sink,
    accel: Accelerator,
    y_ids: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 64,
    state_dir: Path | None = None,
    key: dict[str, Any] | None = None,
    every: int = 50,
    workers: int = 0,
    progress: bool = True,
    hook: Hook | None = None,
    restore: Callable[[dict[str, torch.Tensor], dict[str, Any]], Any] | None = None,
    timings: dict[str, float] | None = None,
) -> Any:
    """Feed this rank's batches of `data` through `features_fn` into `sink`; returns the sink (restored on resume).

    `y_ids` turns a batch's labels into class ids. With `state_dir`, the state is saved every `every`
    batches and at the end; a saved state of the same `key` is resumed (`restore(tensors, meta)`
    rebuilds the sink; without it the sink's `load` method is called). `timings` gets the seconds spent
    computing features ("transform_s") and in the sink ("head_s") added.
    """
    import time

    timings = {} if timings is None else timings
    rank, world = _dist()
    plan = data.batch_plan(batch_size, shuffle=False)
    mine = list(range(rank, len(plan), world))
    key = {**(key or {}), "pass": name, "world": world, "batches": len(plan)}
    done = 0
    if state_dir is not None:
        saved = load_state(state_dir, name, key)
        if saved is not None:
            tensors, info = saved
            done = int(info["batches_done"])
            if restore is not None:
                sink = restore(tensors, info["meta"])
            else:
                sink.load(tensors, info["meta"])  # type: ignore[attr-defined]
            if info.get("complete"):
                return sink
    todo = mine[done:]
    loader = sequence_loader(PlannedBatches(data, [plan[k] for k in todo]), workers, accel.pin_memory)
    cases = sum(len(plan[k][1]) for k in mine)
    bar = tqdm(
        total=cases,
        initial=sum(len(plan[k][1]) for k in mine[:done]),
        desc=name,
        unit="case",
        disable=not progress or rank != 0,
        leave=False,
    )
    try:
        for k, (x, y, lengths) in zip(todo, loader):
            t0 = time.perf_counter()
            feats = features_fn(x.transpose(1, 2), lengths)
            t1 = time.perf_counter()
            sink.update(feats, y_ids(np.asarray(y)), k)
            timings["transform_s"] = timings.get("transform_s", 0.0) + t1 - t0
            timings["head_s"] = timings.get("head_s", 0.0) + time.perf_counter() - t1
            done += 1
            bar.update(len(y))
            if state_dir is not None and every and done % every == 0 and done < len(mine):
                save_state(state_dir, name, sink, done, key, complete=False)
            if hook is not None:
                hook(name, done)
    finally:
        bar.close()
    if state_dir is not None:
        save_state(state_dir, name, sink, done, key, complete=True)
    return sink


@torch.no_grad()
def batch_features(module: torch.nn.Module, accel: Accelerator) -> Callable[[torch.Tensor, Any], np.ndarray]:
    """features_fn for run_pass: the module on the accelerator's device and precision, float32 on the host."""

    def fn(x: torch.Tensor, lengths: torch.Tensor | None) -> np.ndarray:
        with torch.no_grad():
            xd = accel.to_device(x)
            ld = None if lengths is None else accel.to_device(lengths)
            with accel.autocast():
                out = module(xd, ld)
            return out.float().cpu().numpy()

    return fn


def fit_logistic(
    path: Path,
    y: np.ndarray,
    num_classes: int,
    standardize: np.ndarray,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """A softmax regression on the cached features (N, F) at `path` (memory-mapped), by minibatches.

    Standardized from one read of the file (float64 sums; `standardize` as RidgeStats.solve), then
    `epochs` of Adam on the mean cross-entropy + ‖W‖² / 2N (LogisticRegression's C=1 penalty), blocks
    of `batch_size` rows in a seeded random order. Returns {mean, scale, coef (K, F), intercept (K,)}.
    """
    feats = np.load(path, mmap_mode="r")
    n, f = feats.shape
    s1, s2 = np.zeros(f), np.zeros(f)
    shift = np.asarray(feats[: min(n, batch_size)], np.float64).mean(0)
    for i in range(0, n, 4096):
        c = np.asarray(feats[i : i + 4096], np.float64) - shift
        s1 += c.sum(0)
        s2 += (c**2).sum(0)
    mean = shift + s1 / n
    std = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0))
    std[std < 10 * np.finfo(np.float64).eps] = 1.0
    scale = np.where(standardize, std, 1.0)
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(f, num_classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.Adam(linear.parameters(), lr=lr)
    m, s = torch.from_numpy(mean).float(), torch.from_numpy(scale).float()
    targets = torch.from_numpy(np.asarray(y, np.int64))
    block = max(batch_size // 8, 1)  # a minibatch: 8 blocks of contiguous rows from anywhere in the file
    starts = np.arange(0, n, block)
    for epoch in range(epochs):
        order = torch.randperm(len(starts), generator=gen).numpy()
        steps = [order[i : i + 8] for i in range(0, len(order), 8)]
        for step in tqdm(steps, desc=f"logistic epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            rows = np.concatenate([np.arange(starts[i], min(starts[i] + block, n)) for i in np.sort(step)])
            xb = (torch.from_numpy(np.asarray(feats[rows], np.float32)) - m) / s
            loss = torch.nn.functional.cross_entropy(linear(xb), targets[rows])
            loss = loss + linear.weight.pow(2).sum() / (2 * n)
            opt.zero_grad()
            loss.backward()
            opt.step()
    coef = linear.weight.detach().double().numpy()
    return {"mean": mean, "scale": scale, "coef": coef, "intercept": linear.bias.detach().double().numpy()}
