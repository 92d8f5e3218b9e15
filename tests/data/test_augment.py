"""archkit.data.augment: flips and RGB channel orders, reproducible and DDP-sliceable."""

import pytest
import torch

from archkit.data import augment_batch, flip_permute


def test_flip_permute_only_flips_and_reorders_channels():
    x = torch.rand(64, 3, 5, 6)
    y = flip_permute(x, torch.Generator().manual_seed(0))
    flips = permutes = 0
    for a, b in zip(x, y):
        # each output image is the input, maybe mirrored, with its 3 channels in some order
        matches = [
            (f, p)
            for f in (False, True)
            for p in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0])
            if torch.equal((a.flip(-1) if f else a)[p], b)
        ]
        assert len(matches) == 1
        flips += matches[0][0]
        permutes += matches[0][1] != [0, 1, 2]
    assert 16 < flips < 48 and permutes > 32  # both happen, neither always
    assert torch.equal(y, flip_permute(x, torch.Generator().manual_seed(0)))  # reproducible from the generator


def test_slices_of_the_global_batch_augment_as_one_batch_would():
    x = torch.rand(8, 3, 4, 4)
    whole = flip_permute(x, torch.Generator().manual_seed(3))
    parts = [
        flip_permute(x[r * 4 : (r + 1) * 4], torch.Generator().manual_seed(3), offset=r * 4, total=8) for r in (0, 1)
    ]
    assert torch.equal(torch.cat(parts), whole)


def test_grey_images_are_only_flipped_and_bad_input_is_a_clear_error():
    x = torch.rand(16, 1, 3, 3)
    y = flip_permute(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(b, a) or torch.equal(b, a.flip(-1)) for a, b in zip(x, y))
    assert augment_batch(x, "none") is x
    with pytest.raises(ValueError, match="augment: expected one of"):
        augment_batch(x, "mixup")
    with pytest.raises(ValueError, match=r"x: expected a batch \(B, C, H, W\)"):
        flip_permute(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match=r"offset: expected 0..4"):
        flip_permute(x[:4], offset=6, total=8)
