"""The layout rules of an image folder: which images are labelled, and how.

* Every image at the top level, no sub-folders with images: an unlabelled set.
* Every image inside a sub-folder: labelled, the class is the first sub-folder's name.
* Images at the top level beside class folders: an error naming them (they would either lose their
  label or turn every class label off); move them into a class folder.
* A sub-folder holding no readable image: not a class; left out with a warning naming it.
* A single class folder: labelled with one class (label 0), with a warning: a class-conditional
  model has nothing to choose between.
* Hidden files and folders (names starting with '.', e.g. `.ipynb_checkpoints/`): skipped with a warning
  naming them, so they never become a class or lend their copies to one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..utils.notices import FolderLayoutWarning, name_files, warn

__all__ = ["FolderLayout", "folder_layout", "is_hidden"]


def is_hidden(relative: Path) -> bool:
    """True when any part of a path relative to the data folder starts with '.' (hidden on Unix and macOS)."""
    return any(part.startswith(".") for part in relative.parts)


@dataclass(frozen=True)
class FolderLayout:
    """Class names (None: unlabelled) and each readable file's label index (-1 when unlabelled)."""

    class_names: list[str] | None
    labels: list[int]
    counts: dict[str, int]

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for an unlabelled folder)."""
        return len(self.class_names) if self.class_names is not None else 0

    def describe(self, root: str | Path) -> str:
        """One line: the folder, its classes and the images in each."""
        total = len(self.labels)
        if self.class_names is None:
            return f"data {str(root)!r}: {total} images, unlabelled (no class folders)"
        parts = ", ".join(f"{name} {self.counts[name]}" for name in self.class_names[:20])
        more = f", ... ({len(self.class_names) - 20} more)" if len(self.class_names) > 20 else ""
        return f"data {str(root)!r}: {total} images in {len(self.class_names)} classes: {parts}{more}"


def folder_layout(root: str | Path, files: Sequence[Path]) -> FolderLayout:
    """Apply the module's rules to the readable image `files` below `root` (raises ValueError for mixed levels)."""
    root = Path(root)
    parts = [p.relative_to(root).parts for p in files]
    top = [files[i] for i, pp in enumerate(parts) if len(pp) == 1]
    if len(top) == len(files):
        return FolderLayout(None, [-1] * len(files), {})
    if top:
        raise ValueError(
            f"data: {str(root)!r} holds {len(top)} image(s) at its top level beside class folders "
            f"({name_files([p.name for p in top])}); move them into a class folder, or keep only images at the top "
            f"level for an unlabelled set"
        )
    counts = Counter(pp[0] for pp in parts)
    class_names = sorted(counts)
    empty = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in counts)
    if empty:
        warn(
            f"{len(empty)} class folder(s) under {str(root)!r} hold no readable image and are left out: "
            f"{name_files(empty)}",
            FolderLayoutWarning,
        )
    if len(class_names) == 1:
        warn(
            f"{str(root)!r} has a single class folder ({class_names[0]!r}): every image gets label 0, so a "
            f"class-conditional model has nothing to choose between",
            FolderLayoutWarning,
        )
    index = {name: k for k, name in enumerate(class_names)}
    return FolderLayout(class_names, [index[pp[0]] for pp in parts], dict(counts))
