"""The code maps `archkit vqvae encode` writes and the priors read: a folder of memory-mapped .npy files.

Layout of RUN_DIR/codes/:
    meta.json                 {"format": "archkit-codes", "num_codes": [...], "num_classes": K,
                               "splits": {"train": {"n": N, "shapes": [[H_0, W_0], ...]}, ...}, ...}
    {split}_codes_{l}.npy     (N, H_l, W_l) code ids of level l (0 = top), int16 (int32 for > 32768 codes)
    {split}_labels.npy        (N,) int64, when the data is labelled
Each array is written batch by batch into an np.lib.format.open_memmap file, so encoding never
holds a split in memory; the folder is built under a temp name and moved in place as a whole.
meta.json also records the VQ-VAE step and weights hash the codes came from (provenance.py).
Only an empty folder or an older codes folder is ever replaced (io/outdir.py); the temp folder of a
killed encode (`.codes.tmp-<pid>-XXXX` of a process that no longer runs) is removed by the next one.
Reading checks meta.json field by field and every array's shape against it.
A legacy single-file codes.npz (archkit < 0.x) is still read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.outdir import check_out_folder, mark_out_folder
from .provenance import validate_codes_meta

CODES_DIR = "codes"
LEGACY_CODES_FILE = "codes.npz"
META = "meta.json"
FORMAT = "archkit-codes"


class CodesWriter:
    """Writes one codes folder: `write(split, n, start, codes, labels)` per batch, then `commit()`.

    `out` must be new, empty or an older codes folder (anything else is refused before any work).
    Nothing is visible at `out` until commit(), which replaces the older codes folder there in one
    rename (the old one is moved aside first, then deleted). `abort()` (or an exception inside a
    `with` block) removes the partial folder.
    """

    def __init__(self, out: str | os.PathLike, num_codes: list[int], **meta: Any) -> None:
        self.out = Path(out)
        check_out_folder(self.out, "codes folder")
        remove_dead_temp_folders(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # a new folder under an unguessable name (mkdtemp); the pid lets a later encode clean up after a kill
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-{os.getpid()}-", dir=self.out.parent))
        os.chmod(self.tmp, 0o777 & ~_umask())
        mark_out_folder(self.tmp, "codes folder")
        self.num_codes = [int(k) for k in num_codes]
        self.dtype = np.int16 if max(self.num_codes) <= 2**15 else np.int32
        self.meta: dict[str, Any] = {**meta, "format": FORMAT, "num_codes": self.num_codes, "splits": {}}
        self._arrays: dict[str, np.memmap] = {}

    def write(self, split: str, n: int, start: int, codes: list[torch.Tensor], labels: torch.Tensor | None) -> None:
        """Store rows start..start+B of every level (and the labels) of a split holding n images."""
        if split not in self.meta["splits"]:
            self.meta["splits"][split] = {
                "n": int(n),
                "shapes": [list(c.shape[1:]) for c in codes],
                "labelled": labels is not None,
            }
            for l, c in enumerate(codes):
                self._arrays[f"{split}_codes_{l}"] = np.lib.format.open_memmap(
                    self.tmp / f"{split}_codes_{l}.npy", mode="w+", dtype=self.dtype, shape=(n, *c.shape[1:])
                )
            if labels is not None:
                self._arrays[f"{split}_labels"] = np.lib.format.open_memmap(
                    self.tmp / f"{split}_labels.npy", mode="w+", dtype=np.int64, shape=(n,)
                )
        end = start + len(codes[0])
        for l, c in enumerate(codes):
            self._arrays[f"{split}_codes_{l}"][start:end] = c.cpu().numpy().astype(self.dtype)
        if labels is not None:
            self._arrays[f"{split}_labels"][start:end] = labels.cpu().numpy()

    def commit(self, num_classes: int) -> Path:
        """Flush every array, write meta.json, move the folder to `out`; returns `out`."""
        for a in self._arrays.values():
            a.flush()
        self._arrays.clear()
        self.meta["num_classes"] = int(num_classes)
        (self.tmp / META).write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-{os.getpid()}-", dir=self.out.parent))
        os.rmdir(old)  # only the unique name is wanted: rename needs the target absent
        if check_out_folder(self.out, "codes folder") or self.out.is_dir():  # checked again: nothing else is moved
            os.replace(self.out, old)  # a non-empty folder cannot be renamed over: move the old one aside
        os.replace(self.tmp, self.out)
        if old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        return self.out

    def abort(self) -> None:
        """Remove the partial folder (nothing was ever visible at `out`)."""
        self._arrays.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> CodesWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: Any) -> None:
        if exc_type is not None:
            self.abort()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_dead_temp_folders(out: str | os.PathLike) -> list[Path]:
    """Delete `.OUT.tmp-<pid>` / `.OUT.old-<pid>` folders whose process no longer runs (a killed encode)."""
    out = Path(out)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        for kind in ("tmp", "old"):
            prefix = f".{out.name}.{kind}-"
            pid = entry.name[len(prefix) :].split("-")[0]
            if (
                entry.name.startswith(prefix)
                and pid.isdigit()
                and entry.is_dir()
                and not entry.is_symlink()
                and not _alive(int(pid))
            ):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def default_codes_path(run: str | os.PathLike) -> Path:
    """RUN/codes (the folder `vqvae encode` writes), or a legacy RUN/codes.npz when only that exists."""
    folder = Path(run) / CODES_DIR
    legacy = Path(run) / LEGACY_CODES_FILE
    return legacy if not folder.exists() and legacy.is_file() else folder


def load_codes(run: str | os.PathLike, path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Arrays of a run's codes, memory-mapped (a codes folder) or loaded (a legacy codes.npz).

    Keys: `{split}_codes_{l}`, `{split}_labels` (when labelled), `num_codes` (L,), `num_classes` ().
    """
    p = Path(path) if path else default_codes_path(run)
    if p.is_dir():
        return _load_folder(p, run)
    if not p.is_file():
        raise FileNotFoundError(f"no codes {str(p)!r}: run `archkit vqvae encode --run {run}` first")
    try:
        with np.load(p) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # a torn or foreign file: say which file, not a zipfile traceback
        raise ValueError(
            f"{str(p)!r} is not a readable codes file ({type(e).__name__}: {e}); "
            f"re-run `archkit vqvae encode --run {run}`"
        ) from None
    if "num_codes" not in data or "train_codes_0" not in data:
        raise ValueError(f"{str(p)!r} is not an archkit codes file (needs num_codes and train_codes_0)")
    return data


def _load_folder(p: Path, run: Any) -> dict[str, np.ndarray]:
    redo = f"re-run `archkit vqvae encode --run {run}`"
    try:
        meta = json.loads((p / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{str(p)!r} is not a complete codes folder (meta.json: {type(e).__name__}: {e}); {redo}"
        ) from None
    meta = validate_codes_meta(meta, p / META, FORMAT)
    data: dict[str, np.ndarray] = {
        "num_codes": np.array(meta["num_codes"], dtype=np.int64),
        "num_classes": np.array(meta.get("num_classes", 0), dtype=np.int64),
    }
    for split in ("train", "test"):
        info = meta["splits"][split]
        names = [f"{split}_codes_{l}" for l in range(len(info["shapes"]))]
        names += [f"{split}_labels"] if info.get("labelled") else []
        for name in names:
            try:
                a = np.load(p / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise ValueError(
                    f"{str(p / (name + '.npy'))!r} is not readable ({type(e).__name__}: {e}); {redo}"
                ) from None
            level = int(name.rsplit("_", 1)[1]) if "_codes_" in name else None
            want = (info["n"], *info["shapes"][level]) if level is not None else (info["n"],)
            if tuple(a.shape) != want or a.dtype.kind not in "iu":
                raise ValueError(
                    f"{str(p / (name + '.npy'))!r} holds {a.dtype} {tuple(a.shape)}, but meta.json "
                    f"(field splits.{split}) says integers {want}; {redo}"
                )
            data[name] = a
    return data


def read_codes_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The checked meta.json of a codes folder ({} for a legacy codes.npz, which records nothing)."""
    p = Path(path)
    if not p.is_dir():
        return {}
    try:
        meta = json.loads((p / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{str(p / META)!r} is not readable ({type(e).__name__}: {e})") from None
    return validate_codes_meta(meta, p / META, FORMAT)


class CodeArray:
    """Rows of a (memory-mapped) code or label array, read on indexing as int64 tensors."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        return torch.from_numpy(np.asarray(self.array[idx], dtype=np.int64))


__all__ = [
    "CODES_DIR",
    "LEGACY_CODES_FILE",
    "CodeArray",
    "CodesWriter",
    "default_codes_path",
    "load_codes",
    "read_codes_meta",
    "remove_dead_temp_folders",
]
