"""Image datasets for generative models: a folder reader and two built-in sets (no downloads).

* `ImageFolder(root, image_size)`: every PNG/JPEG/WebP/BMP below root (recursive), resized so the
  short side is `image_size`, then center- or randomly cropped; the label is the first sub-folder.
* "digits": scikit-learn's 1,797 handwritten digits upsampled to image_size (1 channel, 10 classes).
* "natural": random crops of the photographs shipped inside scikit-image and scikit-learn; the
  held-out crops come from photographs never seen in training.
`load_image_dataset(name_or_path, split, image_size)` returns any of them as in-memory tensors;
`open_image_dataset` returns a folder as an `ImageFolderSplit` decoded per item (streamed through a
DataLoader, see data/loader.py) and the built-in sets in memory.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
BUILTIN_IMAGE_SETS = ("digits", "natural")
TEST_FRACTION = 0.2
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


def _resize_crop(img, image_size: int, crop: str, rng: np.random.Generator | None):
    """Resize a PIL image so its short side is image_size, then crop a square."""
    from PIL import Image

    w, h = img.size
    scale = image_size / min(w, h)
    nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    if crop == "random" and rng is not None:
        left, top = int(rng.integers(0, nw - image_size + 1)), int(rng.integers(0, nh - image_size + 1))
    else:
        left, top = (nw - image_size) // 2, (nh - image_size) // 2
    return img.crop((left, top, left + image_size, top + image_size))


def _to_tensor(img, channels: int) -> torch.Tensor:
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_image_file(path: str | os.PathLike, image_size: int, channels: int = 3, crop: str = "center") -> torch.Tensor:
    """One image file as a (C, S, S) float tensor in [0, 1] (resize short side + crop)."""
    from PIL import Image, UnidentifiedImageError

    _check_size(image_size)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return _to_tensor(_resize_crop(img, image_size, crop, None), channels)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"image file {str(path)!r} cannot be read as an image: {e}") from None


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")


class ImageFolder(torch.utils.data.Dataset):
    """Images below a folder (recursive), label = first sub-folder name (or none); a torch Dataset.

    Unreadable files are dropped when the folder is scanned, with one warning giving their count.
    `channels=None` picks 1 when every image is grayscale, else 3.
    """

    def __init__(
        self, root: str | os.PathLike, image_size: int, channels: int | None = None, crop: str = "center", seed: int = 0
    ) -> None:
        from PIL import Image

        _check_size(image_size)
        if crop not in ("center", "random"):
            raise ValueError(f"crop: expected 'center' or 'random', got {crop!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels: expected 1, 3 or None (auto), got {channels!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist or is not a folder")
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        good, modes, bad = [], set(), 0
        for p in files:
            try:
                with Image.open(p) as img:
                    img.verify()  # cheap integrity check; decoding happens in __getitem__
                    modes.add(img.mode)
                good.append(p)
            except Exception:  # PIL raises many types for corrupt files; any of them means "skip"
                bad += 1
        if bad:
            warnings.warn(f"ImageFolder: skipped {bad} unreadable image file(s) under {str(self.root)!r}", stacklevel=2)
        if not good:
            raise ValueError(f"image folder {str(self.root)!r} holds no readable {'/'.join(EXTENSIONS)} images")
        rel = [p.relative_to(self.root).parts for p in good]
        labelled = all(len(parts) > 1 for parts in rel)
        self.class_names = sorted({parts[0] for parts in rel}) if labelled else None
        self.files = good
        self.labels = torch.tensor([self.class_names.index(parts[0]) for parts in rel]) if labelled else None
        self.num_classes = len(self.class_names) if labelled else 0
        self.channels = channels or (1 if modes <= {"1", "L", "I", "I;16", "F", "LA"} else 3)
        self.image_size, self.crop = image_size, crop
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.files[i]) as img:
            img.load()
            x = _to_tensor(_resize_crop(img, self.image_size, self.crop, self._rng), self.channels)
        return x, int(self.labels[i]) if self.labels is not None else -1


def _folder_split(ds: ImageFolder, split: str) -> list[int]:
    """Fixed held-out split by a hash of each relative path (stable when files are added)."""
    out = []
    for i, p in enumerate(ds.files):
        h = int(hashlib.sha1(str(p.relative_to(ds.root)).encode()).hexdigest()[:8], 16) / 2**32
        if (h < TEST_FRACTION) == (split == "test"):
            out.append(i)
    return out


def _natural_photos(names: Sequence[str]):
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


class ImageFolderSplit(torch.utils.data.Dataset):
    """The train or test split of an ImageFolder, decoded per item (nothing but file names held in memory).

    A file that passed the folder scan but fails to decode later (truncated JPEG, changed on disk) is
    replaced by the next readable image of the split, with a warning; `load_failures` counts these
    across DataLoader worker processes (a shared-memory counter).
    """

    def __init__(self, folder: ImageFolder, split: str) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        self.folder, self.split = folder, split
        self.indices = _folder_split(folder, split)
        if not self.indices:
            raise ValueError(
                f"data: folder {str(folder.root)!r} has no images in its {split!r} split "
                f"({len(folder)} images, {TEST_FRACTION:.0%} held out by path hash); add more images"
            )
        self.labels = folder.labels[self.indices] if folder.labels is not None else None
        self.num_classes, self.class_names, self.channels = folder.num_classes, folder.class_names, folder.channels
        self.name = str(folder.root)
        self._failures = torch.zeros(1, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def load_failures(self) -> int:
        """Files that could not be decoded when read (each replaced by the next readable image)."""
        return int(self._failures.item())

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for k in range(len(self.indices)):
            j = self.indices[(i + k) % len(self.indices)]
            try:
                x, _ = self.folder[j]
            except Exception as e:  # PIL raises many types for damaged files; any of them means "substitute"
                self._failures += 1
                warnings.warn(
                    f"ImageFolder: {str(self.folder.files[j])!r} could not be decoded "
                    f"({type(e).__name__}: {e}); using the next readable image",
                    stacklevel=2,
                )
                continue
            return x, int(self.labels[i]) if self.labels is not None else -1
        raise ValueError(f"data: no image of the {self.split!r} split of {self.name!r} can be decoded")

    def warn_load_failures(self) -> int:
        """Warn once with the number of files that failed to decode so far; returns it."""
        n = self.load_failures
        if n:
            warnings.warn(
                f"ImageFolder: {n} image read(s) under {self.name!r} failed to decode and were replaced "
                f"by the next readable image",
                stacklevel=2,
            )
        return n


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
        atomic_write(sub / f"{start + i:06d}.png", lambda tmp, img=img: img.save(tmp, format="PNG"))
    return folder
