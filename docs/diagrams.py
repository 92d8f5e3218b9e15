"""Draw docs/img/architecture.png: the floors of archkit and the data path image -> codes -> prior -> sample.

    python docs/diagrams.py            # rewrites docs/img/architecture.png (a few seconds, no data)
The floors are read from tests/test_architecture.py (FLOORS), so the picture shows the order the test enforces.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from archkit.utils import new_figure, save_figure

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "architecture.png"
# what lives on each floor, in a few words (the floor names themselves come from the test)
WHAT = {
    "io": "atomic writes, safetensors + JSON config, manifests",
    "utils": "tables, figures, image grids",
    "threads": "CPU thread defaults of the command",
    "layers": "ConvNormAct, low-rank, quantizer, PixelCNN layers",
    "data": "digits, image folders, sequences, loaders",
    "surgery": "fuse_bn, freeze_bn, lowrank, decompose, export",
    "models": "ResNet, VQVAE2, GatedPixelCNN, ... + registry",
    "loading": "load_model: weights + replayed surgery",
    "train": "loops, checkpoints, accelerate, DDP",
    "studies": "`archkit study NAME`",
    "estimators": "scikit-learn estimators",
    "aeon": "aeon classifiers (optional extra)",
    "cli": "the `archkit` command",
    "__init__": "archkit's public API",
}
LABELS = {"__init__": "archkit", "loading": "loading.py", "threads": "threads.py"}
DATA_PATH = [  # (box text, where it lives)
    ("images\n(N, C, H, W)", "data/"),
    ("VQ-VAE-2 encoder", "models/vqvae.py"),
    ("quantize to codes\ntop + bottom maps", "layers/quantize.py"),
    ("codes on disk\nrun/codes/*.npy", "train/encode.py"),
    ("top prior\n(class)", "models/pixelcnn.py\ntrain/prior.py"),
    ("bottom prior\n(class + top codes)", "models/pixelcnn.py\ntrain/prior.py"),
    ("sample codes\ntop, then bottom", "models/sampling.py"),
    ("VQ-VAE-2 decoder\n-> images", "train/generate.py"),
]


def read_floors(test: Path = ROOT / "tests" / "test_architecture.py") -> list[tuple[str, ...]]:
    """FLOORS from the architecture test, bottom first."""
    for node in ast.walk(ast.parse(test.read_text(encoding="utf-8"))):
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "FLOORS" and getattr(node, "value", None) is not None:
            return [tuple(t) for t in ast.literal_eval(node.value)]  # type: ignore[arg-type]
    raise ValueError(f"{test}: no FLOORS list found")


def box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 8.5) -> None:
    """A rounded box with centred text."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#444"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def arrow(ax: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#333", "lw": 1.2})


def draw_floors(ax: Any, floors: list[tuple[str, ...]]) -> None:
    """Floors bottom to top; each floor imports only floors drawn below it."""
    height, gap = 0.8, 0.35
    for i, names in enumerate(floors):
        y = i * (height + gap)
        shown = [n for n in names if n != "__main__"]  # archkit/__main__.py shares the top floor with __init__
        width = 9.0 / len(shown)
        for j, name in enumerate(shown):
            label = LABELS.get(name, f"{name}/")
            box(
                ax,
                j * width + 0.05,
                y,
                width - 0.1,
                height,
                f"{label}\n{WHAT.get(name, '')}",
                "#dbe9f6" if i % 2 else "#eaf3e1",
                size=8,
            )
        if i:
            arrow(ax, (9.4, y + height / 2), (9.4, y - gap - height / 2))
    ax.text(
        9.6, (len(floors) - 1) * (height + gap) / 2, "imports point down only", rotation=90, va="center", fontsize=9
    )
    ax.set_xlim(-0.1, 10.1)
    ax.set_ylim(-0.2, len(floors) * (height + gap))
    ax.set_title("The floors (tests/test_architecture.py enforces them)", fontsize=11)
    ax.axis("off")


def draw_data_path(ax: Any) -> None:
    """image -> codes -> prior -> sample, as two rows of boxes."""
    w, h = 2.1, 1.1
    for k, (text, where) in enumerate(DATA_PATH):
        row, col = divmod(k, 4)
        x = col * 2.6 if row == 0 else (3 - col) * 2.6
        y = 2.2 if row == 0 else 0.0
        box(ax, x, y, w, h, text, "#fbe7d3" if row == 0 else "#e8e1f5", size=8.5)
        ax.text(x + w / 2, y - 0.18, where, ha="center", va="top", fontsize=7, color="#555", family="monospace")
        if k % 4:
            x_prev = x - 2.6 if row == 0 else x + 2.6
            start = (x_prev + w, y + h / 2) if row == 0 else (x_prev, y + h / 2)
            arrow(ax, start, (x, y + h / 2) if row == 0 else (x + w, y + h / 2))
    arrow(ax, (3 * 2.6 + w / 2, 2.2 - 0.55), (3 * 2.6 + w / 2, h + 0.05))
    ax.text(0.0, 3.75, "stage 1: VQ-VAE-2 (archkit vqvae train, vqvae encode)", fontsize=9)
    ax.text(0.0, -0.95, "stage 2: priors over the codes (archkit prior train, sample, evaluate)", fontsize=9)
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-1.2, 4.1)
    ax.set_title("The data path: image -> codes -> prior -> sample", fontsize=11)
    ax.axis("off")


def main() -> None:
    fig, (left, right) = new_figure(1, 2, figsize=(16, 7.5), gridspec_kw={"width_ratios": [1, 1.05]})
    draw_floors(left, read_floors())
    draw_data_path(right)
    print(f"wrote {save_figure(fig, OUT)}")


if __name__ == "__main__":
    main()
