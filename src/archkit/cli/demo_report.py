"""The demo's report.md: its two pictures and its numbers, from the record `archkit demo` keeps in metrics.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_report(out: Path, m: dict[str, Any]) -> Path:
    """report.md: the two pictures and the numbers."""
    from ..io import atomic_write_text
    from ..utils import markdown_table

    ev, vq = m["evaluation"], m["vqvae"]
    rows = [
        [name.replace("_", " "), r["class_agreement"], r["cas"], r["frechet_distance"]]
        for name, r in ev["rows"].items()
    ]
    levels = vq.get("levels") or []
    usage = ", ".join(f"level {l}: {lv.get('codes_used')}/{lv.get('codes')} codes used" for l, lv in enumerate(levels))
    prior_rows = [
        [
            p["level"],
            p["step"],
            p["test_bits_per_code"],
            p["train_bits_per_code"],
            p["test_accuracy"],
            p["train_accuracy"],
        ]
        for p in ev["priors"]
    ]
    cfg = m["config"]
    text = f"""# archkit demo: VQ-VAE-2 + Gated PixelCNN priors on digits

Digits (scikit-learn, upsampled to 32x32, fixed held-out split). Stage 1: VQ-VAE-2 with
{cfg["num_codes"]} codes (top, bottom), {cfg["vqvae_steps"]} steps. Stage 2: a class-conditional Gated PixelCNN
prior per level ({cfg["prior_steps"]} steps); the bottom prior is also conditioned on the top codes.

## Reconstructions (held-out originals above, reconstructions below)

![reconstructions](recon.png)

Held-out PSNR **{vq["psnr"]:.2f} dB**; {usage}; swapping top codes between images changes the
reconstruction by {vq["top_swap_mse"]:.2e} MSE (the top level carries information).

## Samples (one row per class 0-9, temperature {cfg["temperature"]})

![samples](samples.png)

## Do the samples look like the requested digits?

A ResNet classifier trained on the real training digits (held-out accuracy
{ev["classifier_test_accuracy"]:.3f}); {ev["per_class"]} samples per class. *Class agreement*: share of images
the classifier assigns to the requested class. *CAS*: accuracy on the real held-out digits of a fresh
classifier trained only on these images. *Frechet*: Frechet distance to the real held-out digits in the
classifier's feature space (lower is better).

{markdown_table(["images", "class agreement", "CAS", "Frechet distance"], rows)}

Targets: class agreement >= 0.80 and CAS >= 0.70 for prior samples, uniform-random codes far below.

## Priors: held-out vs train (overfitting check)

{
        markdown_table(
            ["level", "step", "held-out bits/code", "train bits/code", "held-out code acc", "train code acc"],
            prior_rows,
        )
    }

Stage times: {", ".join(f"{k} {v:.0f} s" for k, v in m["stage_seconds"].items())} (total
{sum(m["stage_seconds"].values()) / 60:.1f} min; stages skipped on a resumed run take ~0 s).
"""
    atomic_write_text(out / "report.md", text)
    return out / "report.md"


__all__ = ["write_report"]
