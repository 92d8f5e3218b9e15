"""Which VQ-VAE weights a codes folder (and a prior trained on it) came from, and checks of its meta.json.

`vqvae encode` records the VQ-VAE's training step and the SHA-256 of its weights file (read from
the checkpoint's manifest) in the codes folder's meta.json; `prior train` copies them beside the
prior's weights. `prior train`, `sample` and `evaluate` compare them with the run's current VQ-VAE
and refuse codes or priors from other weights (a resumed VQ-VAE maps images to other codes),
naming both steps; `accept_stale=True` (`--accept-stale-codes`) accepts them with a warning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..utils.notices import ArchkitWarning, warn

__all__ = ["StaleCodesWarning", "check_provenance", "validate_codes_meta", "vqvae_provenance"]

STEP, SHA = "vqvae_step", "vqvae_sha256"


class StaleCodesWarning(ArchkitWarning):
    """Codes (or a prior) from other VQ-VAE weights were used on request."""


def vqvae_provenance(run: str | os.PathLike) -> dict[str, Any]:
    """{"vqvae_step": step, "vqvae_sha256": hash of model.safetensors} of RUN/vqvae, from its manifest."""
    path = Path(run) / "vqvae" / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        sha = manifest["files"]["model.safetensors"]["sha256"]
        step = manifest.get("step")
    except FileNotFoundError:
        return {}  # a checkpoint from before manifests: nothing to compare
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{str(path)!r}: field files.model.safetensors.sha256 is unreadable ({e!r})") from None
    if not isinstance(sha, str) or (step is not None and not isinstance(step, int)):
        raise ValueError(f"{str(path)!r}: field step/sha256 has the wrong type")
    return {STEP: step, SHA: sha}


def check_provenance(recorded: dict[str, Any], run: str | os.PathLike, what: str, accept_stale: bool = False) -> None:
    """Raise ValueError when `recorded` (a codes meta.json or prior config) names other VQ-VAE weights than RUN's.

    `what` names the thing checked ("codes 'RUN/codes'"). Records without provenance (written by an
    older archkit) pass with a warning; so do stale ones when `accept_stale`.
    """
    current = vqvae_provenance(run)
    if not current:
        return
    if recorded.get(SHA) is None:
        warn(
            f"{what} records no VQ-VAE step or weights hash (written by an older archkit); "
            f"cannot check they match the VQ-VAE in {str(run)!r}",
            StaleCodesWarning,
        )
        return
    if recorded[SHA] == current[SHA]:
        return
    message = (
        f"{what} come from the VQ-VAE at step {recorded.get(STEP)} (weights {recorded[SHA][:12]}), but "
        f"{str(run)!r} now holds the VQ-VAE at step {current[STEP]} (weights {current[SHA][:12]})"
    )
    if accept_stale:
        warn(f"{message}; used anyway (--accept-stale-codes)", StaleCodesWarning)
        return
    raise ValueError(
        f"{message}; re-run `archkit vqvae encode --run {run}` (and retrain the priors), "
        f"or pass --accept-stale-codes to use them anyway"
    )


def _field(path: Path, name: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{str(path)!r}: field {name}: expected {expected}, got {value!r}")


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate_codes_meta(meta: Any, path: Path, format_name: str) -> dict[str, Any]:
    """Check a codes meta.json field by field; a one-line ValueError naming the file and field otherwise."""
    if not isinstance(meta, dict):
        raise _field(path, "(top level)", type(meta).__name__, "a JSON object")
    if meta.get("format") != format_name:
        raise _field(path, "format", meta.get("format"), repr(format_name))
    num_codes = meta.get("num_codes")
    if not isinstance(num_codes, list) or not num_codes or not all(_pos_int(k) for k in num_codes):
        raise _field(path, "num_codes", num_codes, "a non-empty list of positive ints (one per level)")
    k = meta.get("num_classes", 0)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise _field(path, "num_classes", k, "an int >= 0")
    splits = meta.get("splits")
    if not isinstance(splits, dict):
        raise _field(path, "splits", splits, 'an object {"train": ..., "test": ...}')
    for split in ("train", "test"):
        info = splits.get(split)
        if not isinstance(info, dict):
            raise _field(path, f"splits.{split}", info, "an object with n, shapes and labelled")
        if not _pos_int(info.get("n")):
            raise _field(path, f"splits.{split}.n", info.get("n"), "a positive int (rows)")
        shapes = info.get("shapes")
        if (
            not isinstance(shapes, list)
            or len(shapes) != len(num_codes)
            or not all(isinstance(s, list) and len(s) == 2 and all(_pos_int(v) for v in s) for s in shapes)
        ):
            raise _field(
                path, f"splits.{split}.shapes", shapes, f"{len(num_codes)} [height, width] pairs of positive ints"
            )
        if not isinstance(info.get("labelled", False), bool):
            raise _field(path, f"splits.{split}.labelled", info.get("labelled"), "true or false")
    for key in (STEP,):
        if meta.get(key) is not None and not isinstance(meta[key], int):
            raise _field(path, key, meta[key], "an int")
    if meta.get(SHA) is not None and not isinstance(meta[SHA], str):
        raise _field(path, SHA, meta[SHA], "a hex string")
    return meta
