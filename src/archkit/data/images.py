"""Image datasets for generative models: a folder reader and two built-in sets (no downloads).

* `ImageFolder(root, image_size)` (data/folder.py): every PNG/JPEG/WebP/BMP below root (recursive),
  decoded by the rules of data/decode.py (every Pillow mode, transparency onto white, EXIF
  orientation), resized so the short side is `image_size`, then center- or randomly cropped; the
  label is the first sub-folder, by the layout rules of data/layout.py.
* "digits": scikit-learn's 1,797 handwritten digits upsampled to image_size (1 channel, 10 classes).
* "natural": random crops of the photographs shipped inside scikit-image and scikit-learn; the
  held-out crops come from photographs never seen in training.
`load_image_dataset(name_or_path, split, image_size)` returns any of them as in-memory tensors;
`open_image_dataset` returns a folder as an `ImageFolderSplit` decoded per item (streamed through a
DataLoader, see data/loader.py) and the built-in sets in memory.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..io import atomic_write
from .decode import decode_image
from .folder import ImageFolder, ImageFolderSplit

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

BUILTIN_IMAGE_SETS = ("digits", "natural")
# Photographs bundled with scikit-image (file names in skimage/data) and scikit-learn. Test photos are
# held out entirely, so a test crop never overlaps a training photo.
_NATURAL_TRAIN = (
    "skimage:astronaut.png",
    "skimage:chelsea.png",
    "skimage:hubble_deep_field.jpg",
    "skimage:ihc.png",
    "skimage:motorcycle_left.png",
    "skimage:motorcycle_right.png",
    "skimage:retina.jpg",
    "skimage:rocket.jpg",
    "sklearn:china.jpg",
)
_NATURAL_TEST = ("skimage:coffee.png", "sklearn:flower.jpg")
NATURAL_TRAIN_PHOTOS = len(_NATURAL_TRAIN)  # "natural" training crop i comes from photograph i % this
_NATURAL_CROPS = {"train": 4096, "test": 512}


@dataclass
class ImageData:
    """An in-memory image set: images (N, C, S, S) floats in [0, 1], optional int64 labels; a map-style dataset."""

    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int
    name: str
    class_names: list[str] | None = None

    @property
    def channels(self) -> int:
        """Number of image channels (1 grayscale, 3 RGB)."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i]) if self.labels is not None else -1


def _to_tensor(img: PILImage, channels: int) -> torch.Tensor:
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_image_file(path: str | os.PathLike, image_size: int, channels: int = 3, crop: str = "center") -> torch.Tensor:
    """One image file as a (C, S, S) float tensor in [0, 1] (any Pillow mode, see data/decode.py)."""
    from PIL import Image, UnidentifiedImageError

    _check_size(image_size)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return decode_image(img, image_size, channels, crop)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"image file {str(path)!r} cannot be read as an image: {e}") from None


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")


def _natural_photos(names: Sequence[str]) -> Iterator[PILImage]:
    from PIL import Image

    dirs = {}
    for name in names:
        pkg, fname = name.split(":")
        if pkg not in dirs:
            if pkg == "skimage":
                import skimage.data

                dirs[pkg] = Path(skimage.data.__file__).parent
            else:
                import sklearn.datasets

                dirs[pkg] = Path(sklearn.datasets.__file__).parent / "images"
        with Image.open(dirs[pkg] / fname) as img:
            yield img.convert("RGB")


def _natural(split: str, image_size: int, seed: int = 0) -> ImageData:
    """Random square crops (side 1-2x image_size, resized) from the bundled photographs."""
    from PIL import Image

    photos = list(_natural_photos(_NATURAL_TRAIN if split == "train" else _NATURAL_TEST))
    n = _NATURAL_CROPS[split]
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    out = torch.empty(n, 3, image_size, image_size)
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        side = int(min(w, h, image_size * rng.uniform(1.0, 2.0) * max(1.0, min(w, h) / 512)))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = img.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.Resampling.BICUBIC)
        out[i] = _to_tensor(crop, 3)
    return ImageData(out, None, 0, "natural")


def load_image_dataset(
    name_or_path: str | os.PathLike, split: str = "train", image_size: int = 32, channels: int | None = None
) -> ImageData:
    """A built-in image set ("digits", "natural") or an image folder, as in-memory tensors in [0, 1]."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    _check_size(image_size)
    name = str(name_or_path)
    if name == "digits":
        from .digits import load_digits

        x, y = load_digits(split, image_size=image_size)
        return _with_channels(ImageData(x, y, 10, "digits", [str(i) for i in range(10)]), channels)
    if name == "natural":
        return _with_channels(_natural(split, image_size), channels)
    if not Path(name).exists():
        raise FileNotFoundError(
            f"data: {name!r} is neither a built-in set {list(BUILTIN_IMAGE_SETS)} nor an existing folder"
        )
    ds = ImageFolderSplit(ImageFolder(name, image_size, channels=channels), split)
    images = torch.stack([ds[i][0] for i in range(len(ds))])  # the same decoding as the streamed view
    ds.warn_load_failures()
    return ImageData(images, ds.labels, ds.num_classes, name, ds.class_names)


def open_image_dataset(
    name_or_path: str | os.PathLike, split: str = "train", image_size: int = 32, channels: int | None = None
) -> ImageData | ImageFolderSplit:
    """A split to read per item: an image folder is streamed (decoded per item), a built-in set is in memory.

    Both kinds are map-style datasets of (image (C, S, S), label or -1) with `labels`, `num_classes`,
    `class_names` and `channels`; a folder split holds the same images `load_image_dataset` returns.
    """
    if str(name_or_path) in BUILTIN_IMAGE_SETS:
        return load_image_dataset(name_or_path, split, image_size, channels)
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    _check_size(image_size)
    if not Path(name_or_path).exists():
        raise FileNotFoundError(
            f"data: {str(name_or_path)!r} is neither a built-in set {list(BUILTIN_IMAGE_SETS)} nor an existing folder"
        )
    return ImageFolderSplit(ImageFolder(name_or_path, image_size, channels=channels), split)


def _with_channels(data: ImageData, channels: int | None) -> ImageData:
    if channels is None or channels == data.channels:
        return data
    if channels == 3 and data.channels == 1:
        data.images = data.images.expand(-1, 3, -1, -1).contiguous()
    elif channels == 1 and data.channels == 3:
        data.images = (data.images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    else:
        raise ValueError(f"channels: expected 1, 3 or None, got {channels!r}")
    return data


def write_image_folder(
    images: torch.Tensor,
    folder: str | os.PathLike,
    labels: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    start: int = 0,
) -> Path:
    """Write (N, C, H, W) images in [0, 1] as 8-bit PNGs `folder/[class/]{start + i:06d}.png` (each atomically).

    With labels the first sub-folder is the class name (`class_names[label]`, default the label), the
    layout `ImageFolder` reads back as labels. Used to turn built-in sets into folders to stream.
    """
    from PIL import Image

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images: expected (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels: expected {len(images)} labels (one per image), got {len(labels)}")
    folder = Path(folder)
    arr = (images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for i, a in enumerate(arr):
        sub = folder
        if labels is not None:
            k = int(labels[i])
            sub = folder / (class_names[k] if class_names is not None else str(k))
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        atomic_write(sub / f"{start + i:06d}.png", functools.partial(img.save, format="PNG"))
    return folder
