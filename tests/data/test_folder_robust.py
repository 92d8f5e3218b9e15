"""Image folders as users really have them: damaged files keep no one else's label, layouts are checked."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from archkit.data import ImageFolder, ImageFolderSplit, make_loader
from archkit.utils.notices import FolderLayoutWarning, UnreadableFilesWarning


def _png(path, value, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8)).save(path)


@pytest.fixture
def two_classes(tmp_path):
    """Class 'black' images are 0, class 'white' images are 255: a label can be read off the pixels."""
    for i in range(30):
        _png(tmp_path / "black" / f"{i:02d}.png", 0)
        _png(tmp_path / "white" / f"{i:02d}.png", 255)
    return tmp_path


@pytest.mark.parametrize("workers", [0, 2])
def test_damaged_files_are_replaced_with_their_own_label(two_classes, workers):
    ds = ImageFolderSplit(ImageFolder(two_classes, 8), "train")
    black = [k for k in range(len(ds)) if int(ds.labels[k]) == 0]
    victims = [black[-1], *black[:3]]  # the last black item is followed by a white one
    for k in victims:  # damaged after the scan: they fail only when decoded
        path = ds.folder.files[ds.indices[k]]
        path.write_bytes(path.read_bytes()[:40])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableFilesWarning)
        pairs = [(x, y) for xb, yb in make_loader(ds, 5, shuffle=False, workers=workers) for x, y in zip(xb, yb)]
        pairs += [ds[k] for k in victims]  # read again: still counted once per file
    assert len(pairs) == len(ds) + len(victims)
    for x, y in pairs:
        assert int(y) == int(x.mean() > 0.5)  # the label is the one of the pixels returned
    assert ds.load_failures == len(victims)
    with pytest.warns(UnreadableFilesWarning, match=rf"{len(victims)} image file\(s\) .* '(black|white)"):
        assert ds.warn_load_failures() == len(victims)


def test_unreadable_files_named_once_at_scan(two_classes):
    (two_classes / "black" / "junk.png").write_bytes(b"not a png")
    with pytest.warns(UnreadableFilesWarning, match=r"skipped 1 unreadable image file\(s\) .*junk\.png") as rec:
        ImageFolder(two_classes, 8)
    assert len([w for w in rec if w.category is UnreadableFilesWarning]) == 1


def test_images_at_the_root_beside_class_folders_are_an_error_naming_them(two_classes):
    _png(two_classes / "stray.png", 128)
    with pytest.raises(ValueError, match=r"1 image\(s\) at its top level beside class folders \('stray\.png'\)"):
        ImageFolder(two_classes, 8)


def test_empty_class_folder_and_single_class_are_warned(tmp_path):
    for i in range(4):
        _png(tmp_path / "only" / f"{i}.png", 0)
    (tmp_path / "empty").mkdir()
    with pytest.warns(FolderLayoutWarning) as rec:
        ds = ImageFolder(tmp_path, 8)
    text = " | ".join(str(w.message) for w in rec)
    assert "left out: 'empty'" in text and "single class folder ('only')" in text
    assert ds.class_names == ["only"] and ds.num_classes == 1
    assert ds.summary.endswith("4 images in 1 classes: only 4")


def test_summary_lists_classes_and_counts(two_classes):
    _png(two_classes / "white" / "extra.png", 255)
    ds = ImageFolder(two_classes, 8)
    assert ds.summary.endswith("61 images in 2 classes: black 30, white 31")
    assert torch.equal(torch.bincount(ds.labels), torch.tensor([30, 31]))


def test_hidden_files_and_folders_never_become_classes(two_classes):
    _png(two_classes / ".ipynb_checkpoints" / "00-checkpoint.png", 128)  # a notebook's copies beside the classes
    _png(two_classes / "white" / ".thumbnails" / "00.png", 0)  # a black thumbnail inside the white class
    _png(two_classes / "black" / ".hidden.png", 255)
    with pytest.warns(FolderLayoutWarning, match=r"skipped 3 image file\(s\) in hidden files or folders") as rec:
        ds = ImageFolder(two_classes, 8)
    assert ".ipynb_checkpoints" in str(rec[0].message)
    assert ds.class_names == ["black", "white"]
    assert ds.summary.endswith("60 images in 2 classes: black 30, white 30")
    for x, y in (ds[i] for i in range(len(ds))):
        assert y == int(x.mean() > 0.5)  # no hidden copy lends its pixels to a class
