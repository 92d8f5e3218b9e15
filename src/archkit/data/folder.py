"""An image folder as a torch Dataset: scanned once, decoded per item, labels that stay with their pixels.

`ImageFolder(root, image_size)` lists every PNG/JPEG/WebP/BMP below root, drops the files that are
not images (named in one warning with their count), applies the layout rules of `layout.py` and
decodes per item with `decode.py`. `ImageFolderSplit` is its fixed train or test part. A file that
passed the scan but fails to decode later (truncated, changed on disk) is replaced by the next
readable image of the split *together with that image's label*; each such file is counted once,
across DataLoader worker processes, and named by `warn_load_failures()`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..utils.notices import FolderLayoutWarning, UnreadableFilesWarning, name_files, warn
from ..utils.validation import check_choice, check_int
from .decode import channels_for_modes, decode_image
from .layout import folder_layout, is_hidden

__all__ = ["EXTENSIONS", "TEST_FRACTION", "ImageFolder", "ImageFolderSplit", "folder_split"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TEST_FRACTION = 0.2


def _scan(files: list[Path]) -> tuple[list[Path], list[Path], set[str]]:
    """(readable files, unreadable files, modes seen): Pillow's cheap integrity check, no decoding."""
    from PIL import Image

    good, bad, modes = [], [], set()
    for p in files:
        try:
            with Image.open(p) as img:
                img.verify()
                modes.add(img.mode)
            good.append(p)
        except Exception:  # PIL raises many types for corrupt files; any of them means "skip"
            bad.append(p)
    return good, bad, modes


class ImageFolder(torch.utils.data.Dataset):
    """Images below a folder (recursive), label = first sub-folder name (or none); a torch Dataset.

    Unreadable files are dropped when the folder is scanned, named in one warning with their count.
    `channels=None` picks 1 when every image is greyscale, else 3. `summary` is one line giving the
    classes and their image counts (the commands print it at start).
    """

    def __init__(
        self, root: str | os.PathLike, image_size: int, channels: int | None = None, crop: str = "center", seed: int = 0
    ) -> None:
        check_int(image_size, "image_size", 1)
        check_choice(crop, "crop", ("center", "random"))
        check_choice(channels, "channels", (None, 1, 3))
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist or is not a folder")
        found = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        hidden = [p.relative_to(self.root) for p in found if is_hidden(p.relative_to(self.root))]
        files = [p for p in found if not is_hidden(p.relative_to(self.root))]
        if hidden:  # .ipynb_checkpoints/, .thumbnails/, ._x.jpg: copies and metadata, not classes
            warn(
                f"ImageFolder: skipped {len(hidden)} image file(s) in hidden files or folders (names starting "
                f"with '.') under {str(self.root)!r}: {name_files(hidden)}",
                FolderLayoutWarning,
            )
        good, bad, modes = _scan(files)
        self.unreadable = bad
        if bad:
            warn(
                f"ImageFolder: skipped {len(bad)} unreadable image file(s) under {str(self.root)!r}: "
                f"{name_files([p.relative_to(self.root) for p in bad])}",
                UnreadableFilesWarning,
            )
        if not good:
            raise ValueError(f"image folder {str(self.root)!r} holds no readable {'/'.join(EXTENSIONS)} images")
        layout = folder_layout(self.root, good)
        self.files, self.class_names, self.num_classes = good, layout.class_names, layout.num_classes
        self.labels = torch.tensor(layout.labels) if layout.class_names is not None else None
        self.summary = layout.describe(self.root)
        self.channels = channels or channels_for_modes(modes)
        self.image_size, self.crop = image_size, crop
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.files[i]) as img:
            img.load()
            x = decode_image(img, self.image_size, self.channels, self.crop, self._rng)
        return x, int(self.labels[i]) if self.labels is not None else -1


def folder_split(folder: ImageFolder, split: str) -> list[int]:
    """Fixed held-out split by a hash of each relative path (stable when files are added)."""
    out = []
    for i, p in enumerate(folder.files):
        h = int(hashlib.sha1(str(p.relative_to(folder.root)).encode()).hexdigest()[:8], 16) / 2**32
        if (h < TEST_FRACTION) == (split == "test"):
            out.append(i)
    return out


class ImageFolderSplit(torch.utils.data.Dataset):
    """The train or test split of an ImageFolder, decoded per item (nothing but file names held in memory).

    A file that fails to decode when read is replaced by the next readable image of the split and
    that image's own label. `load_failures` counts the distinct files that failed, across DataLoader
    worker processes (a shared-memory flag per file); each is warned about once.
    """

    def __init__(self, folder: ImageFolder, split: str) -> None:
        check_choice(split, "split", ("train", "test"))
        self.folder, self.split = folder, split
        self.indices = folder_split(folder, split)
        if not self.indices:
            raise ValueError(
                f"data: folder {str(folder.root)!r} has no images in its {split!r} split "
                f"({len(folder)} images, {TEST_FRACTION:.0%} held out by path hash); add more images"
            )
        self.labels = folder.labels[self.indices] if folder.labels is not None else None
        self.num_classes, self.class_names, self.channels = folder.num_classes, folder.class_names, folder.channels
        self.name, self.summary = str(folder.root), folder.summary
        self._failed = torch.zeros(len(self.indices), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def load_failures(self) -> int:
        """Distinct files that could not be decoded when read (each replaced by the next readable image)."""
        return int(self._failed.sum().item())

    @property
    def failed_files(self) -> list[Path]:
        """The files counted by `load_failures`."""
        return [self.folder.files[self.indices[k]] for k in torch.nonzero(self._failed).flatten().tolist()]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        n = len(self.indices)
        for k in range(n):
            pos = (i + k) % n
            try:
                x, label = self.folder[self.indices[pos]]
            except Exception as e:  # PIL raises many types for damaged files; any of them means "substitute"
                if not bool(self._failed[pos]):
                    first = not bool(self._failed.any())  # later ones are counted and named in one line at the end
                    self._failed[pos] = True
                    if first:
                        warn(
                            f"ImageFolder: {str(self.folder.files[self.indices[pos]])!r} could not be decoded "
                            f"({type(e).__name__}); using the next readable image and its label (any further "
                            "unreadable files are counted and named when the pass ends)",
                            UnreadableFilesWarning,
                        )
                continue
            return x, label
        raise ValueError(f"data: no image of the {self.split!r} split of {self.name!r} can be decoded")

    def warn_load_failures(self) -> int:
        """Warn once, naming the files that failed to decode so far (the first few) and their count; returns it."""
        failed = self.failed_files
        if failed:
            warn(
                f"ImageFolder: {len(failed)} image file(s) under {self.name!r} failed to decode when read and "
                f"were replaced by the next readable image and its label: "
                f"{name_files([p.relative_to(self.folder.root) for p in failed])}",
                UnreadableFilesWarning,
            )
        return len(failed)
