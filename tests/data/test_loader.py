"""Streamed image folders: EpochBatchSampler order, streamed == in-memory batches, workers, corrupt files."""

import warnings

import pytest
import torch

from archkit.data import (
    EpochBatchSampler,
    ImageFolder,
    ImageFolderSplit,
    epoch_permutation,
    load_digits,
    load_image_dataset,
    make_loader,
    open_image_dataset,
    write_image_folder,
)
from archkit.train.distributed import DistInfo, shard


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """48 digits as 16x16 grayscale PNGs, one sub-folder per class."""
    folder = tmp_path_factory.mktemp("digits")
    x, y = load_digits("train", image_size=16)
    return write_image_folder(x[:48], folder, labels=y[:48])


def test_sampler_is_the_seeded_epoch_permutation_and_starts_mid_epoch():
    s = EpochBatchSampler(30, 8, seed=3)
    assert s.batches_per_epoch == 3 and len(s) == 3
    s.set_epoch(1)
    batches = list(s)
    perm = epoch_permutation(30, 3, 1)
    assert batches == [perm[k * 8 : (k + 1) * 8].tolist() for k in range(3)]  # last partial batch dropped
    s.set_epoch(1, start_batch=2)
    assert list(s) == batches[2:] and len(s) == 1
    s.set_epoch(2)
    assert list(s) != batches  # a new epoch, a new order
    assert torch.equal(epoch_permutation(30, 3, 1), perm)  # a pure function of (seed, epoch)


def test_sampler_rank_slices_match_shard_of_the_global_batch():
    full = EpochBatchSampler(40, 8, seed=1)
    full.set_epoch(4)
    parts = []
    for rank in range(2):
        s = EpochBatchSampler(40, 8, seed=1, rank=rank, world_size=2)
        s.set_epoch(4)
        parts.append(list(s))
    for k, batch in enumerate(full):
        for rank in range(2):
            assert parts[rank][k] == shard(torch.tensor(batch), DistInfo(rank, 2, rank, True)).tolist()
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        EpochBatchSampler(40, 9, world_size=2)


def test_sampler_in_order_keeps_the_last_batch_and_errors_name_the_argument():
    s = EpochBatchSampler(10, 4, shuffle=False)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match="batch_size: 16 is larger"):
        EpochBatchSampler(10, 16)
    with pytest.raises(ValueError, match="start_batch"):
        s.set_epoch(0, start_batch=9)
    with pytest.raises(ValueError, match="workers"):
        make_loader(s, 4, workers=-1)


def test_streamed_folder_batches_equal_in_memory_batches(digit_folder):
    memory = load_image_dataset(digit_folder, "train", 16)
    streamed = open_image_dataset(digit_folder, "train", 16)
    assert isinstance(streamed, ImageFolderSplit) and len(streamed) == len(memory) > 30
    assert streamed.channels == memory.channels == 1 and streamed.class_names == memory.class_names
    loader = make_loader(streamed, 8, seed=5, workers=0)
    reference = EpochBatchSampler(len(memory), 8, seed=5)
    for epoch in range(2):
        loader.batch_sampler.set_epoch(epoch)
        reference.set_epoch(epoch)
        n = 0
        for (x, y), idx in zip(loader, reference):
            assert torch.equal(x, memory.images[idx]) and torch.equal(y, memory.labels[idx])
            n += 1
        assert n == len(memory) // 8


def test_two_workers_yield_the_same_batches_as_none(digit_folder):
    ds = open_image_dataset(digit_folder, "train", 16)
    runs = []
    for workers in (0, 2):
        loader = make_loader(ds, 8, seed=2, workers=workers)
        out = []
        for epoch, start in ((0, 1), (1, 0)):  # a resumed epoch, then a full one (persistent workers)
            loader.batch_sampler.set_epoch(epoch, start)
            out += [(x.clone(), y.clone()) for x, y in loader]
        runs.append(out)
    assert len(runs[0]) == len(runs[1]) == 2 * (len(ds) // 8) - 1
    for (xa, ya), (xb, yb) in zip(*runs):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_pinned_memory_only_on_cuda(digit_folder):
    ds = open_image_dataset(digit_folder, "test", 16)
    assert not make_loader(ds, 4, device="cpu", workers=0).pin_memory
    assert make_loader(ds, 4, device="cuda:0", workers=0).pin_memory  # built only: never iterated here
    assert make_loader(ds, 4, pin_memory=True, workers=0).pin_memory


def test_corrupt_files_are_skipped_at_scan_and_replaced_at_load_with_a_count(tmp_path, digit_folder):
    x, y = load_digits("test", image_size=16)
    write_image_folder(x[:40], tmp_path, labels=y[:40])
    (tmp_path / "3" / "junk.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        ds = ImageFolderSplit(ImageFolder(tmp_path, 16), "train")
    victim = ds.folder.files[ds.indices[2]]
    victim.write_bytes(victim.read_bytes()[:60])  # damaged after the scan: fails only when decoded
    loader = make_loader(ds, 4, shuffle=False, workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the worker's per-file warning; the count is checked below
        images = torch.cat([xb for xb, _ in loader])
    assert len(images) == len(ds) and ds.load_failures == 1  # counted across worker processes
    assert torch.equal(images[2], images[3])  # replaced by the next readable image of the split
    with pytest.warns(UserWarning, match=r"1 image file\(s\) .* failed to decode"):
        assert ds.warn_load_failures() == 1
