"""Image data: folder reader (recursive, labels, corrupt files), digits and natural built-ins, grids."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from archkit.data import ImageFolder, load_image_dataset, load_image_file, save_image_grid


def _write(path, size=(40, 30), mode="RGB", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3) if mode == "RGB" else (size[1], size[0]), value, np.uint8)
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def folder(tmp_path):
    for i, ext in enumerate(["png", "jpg", "bmp", "webp"]):
        _write(tmp_path / "cats" / "deep" / f"c{i}.{ext}", value=40 * i)
        _write(tmp_path / "dogs" / f"d{i}.{ext}", mode="L", value=200)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "cats" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    return tmp_path


def test_folder_recursive_labels_and_one_warning_for_corrupt_files(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolder(folder, image_size=16)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "skipped 2" in messages[0]
    assert len(ds) == 8 and ds.class_names == ["cats", "dogs"] and ds.num_classes == 2
    assert ds.channels == 3  # mixed grayscale/RGB -> RGB
    x, _y = ds[0]
    assert x.shape == (3, 16, 16) and x.min() >= 0 and x.max() <= 1
    assert sorted(ds.labels.tolist()) == [0] * 4 + [1] * 4


def test_folder_without_subfolders_is_unlabelled_and_grayscale(tmp_path):
    for i in range(3):
        _write(tmp_path / f"g{i}.png", mode="L", size=(20, 50))
    ds = ImageFolder(tmp_path, image_size=8, crop="random")
    assert ds.labels is None and ds.num_classes == 0 and ds.channels == 1
    assert ds[1][0].shape == (1, 8, 8) and ds[1][1] == -1


def test_load_image_dataset_folder_split_is_disjoint(tmp_path):
    for i in range(40):
        _write(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", value=i)
    tr = load_image_dataset(tmp_path, "train", 8)
    te = load_image_dataset(tmp_path, "test", 8)
    assert len(tr) + len(te) == 40 and len(te) > 0
    assert tr.num_classes == 2 and tr.labels is not None and tr.images.shape[1:] == (3, 8, 8)


def test_digits_builtin():
    d = load_image_dataset("digits", "test", 32)
    assert d.images.shape[1:] == (1, 32, 32) and d.num_classes == 10 and d.channels == 1
    assert d.labels.shape == (len(d),) and set(d.labels.tolist()) == set(range(10))
    assert len(load_image_dataset("digits", "train", 32)) + len(d) == 1797


def test_natural_builtin_splits_by_photo():
    tr = load_image_dataset("natural", "train", 16)
    te = load_image_dataset("natural", "test", 16)
    assert tr.channels == 3 and tr.labels is None and tr.num_classes == 0
    assert tr.images.shape[1:] == (3, 16, 16) and len(te) > 0
    assert tr.images.min() >= 0 and tr.images.max() <= 1 and tr.images.std() > 0.05
    # no held-out crop equals a training crop
    d = torch.cdist(te.images[:64].flatten(1), tr.images.flatten(1))
    assert d.min() > 1e-3


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a built-in set"):
        load_image_dataset(tmp_path / "missing", "train", 16)
    with pytest.raises(ValueError, match="split"):
        load_image_dataset("digits", "val", 16)
    with pytest.raises(ValueError, match="no readable"):
        (tmp_path / "x.png").write_bytes(b"junk")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ImageFolder(tmp_path, 8)
    with pytest.raises(ValueError, match="cannot be read"):
        load_image_file(tmp_path / "x.png", 8)


def test_image_grid(tmp_path):
    path = save_image_grid([torch.rand(3, 1, 8, 8), torch.rand(3, 3, 8, 8)], tmp_path / "g.png")
    img = Image.open(path)
    assert img.size == (3 * 10 + 2, 2 * 10 + 2)
