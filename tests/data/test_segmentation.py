import pytest
import torch

from archkit.data import NUM_SEG_CLASSES, DigitCanvasConfig, make_digit_canvas


def _boxes_mask(size, boxes, d):
    inside = torch.zeros(size, size, dtype=torch.bool)
    for _, r, c in boxes:
        inside[r : r + d, c : c + d] = True
    return inside


def test_labels_match_digit_placement():
    cfg = DigitCanvasConfig()
    data = make_digit_canvas(40, cfg, seed=3)
    assert data.images.shape == (40, 1, cfg.size, cfg.size) and data.masks.shape == (40, cfg.size, cfg.size)
    assert data.masks.dtype == torch.long and int(data.masks.max()) < NUM_SEG_CLASSES
    counts = set()
    for img, mask, boxes in zip(data.images[:, 0], data.masks, data.placements):
        counts.add(len(boxes))
        assert cfg.min_digits <= len(boxes) <= cfg.max_digits
        inside = _boxes_mask(cfg.size, boxes, cfg.digit_size)
        assert (mask[~inside] == 0).all() and (img[~inside] == 0).all()  # nothing drawn outside the boxes
        for digit, r, c in boxes:
            box_mask = mask[r : r + cfg.digit_size, c : c + cfg.digit_size]
            box_img = img[r : r + cfg.digit_size, c : c + cfg.digit_size]
            assert set(box_mask.unique().tolist()) <= {0, digit + 1}  # only this digit's label in its box
            assert (box_mask == digit + 1).any()
            assert torch.equal(box_mask == digit + 1, box_img > cfg.threshold)  # label = thresholded ink
    assert len(counts) > 1  # the digit count varies


def test_boxes_never_overlap():
    cfg = DigitCanvasConfig(max_digits=4)
    d = cfg.digit_size
    for boxes in make_digit_canvas(30, cfg, seed=0).placements:
        for i, (_, r1, c1) in enumerate(boxes):
            for _, r2, c2 in boxes[i + 1 :]:
                assert abs(r1 - r2) >= d or abs(c1 - c2) >= d


def test_deterministic_and_seed_dependent():
    a, b = make_digit_canvas(5, seed=1), make_digit_canvas(5, seed=1)
    c = make_digit_canvas(5, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.masks, c.masks)


def test_shift_options_change_images_not_labels():
    clean = make_digit_canvas(6, DigitCanvasConfig(), seed=4)
    inverted = make_digit_canvas(6, DigitCanvasConfig(invert=True), seed=4)
    noisy = make_digit_canvas(6, DigitCanvasConfig(noise=0.2), seed=4)
    assert torch.allclose(inverted.images, 1 - clean.images)
    assert torch.equal(inverted.masks, clean.masks) and torch.equal(noisy.masks, clean.masks)
    assert 0.1 < (noisy.images - clean.images).std() < 0.3


def test_class_subset_and_test_split():
    data = make_digit_canvas(20, DigitCanvasConfig(classes=(3, 7)), seed=0, split="test")
    labels = set(data.masks.unique().tolist())
    assert labels <= {0, 4, 8} and labels - {0}


@pytest.mark.parametrize(
    "kwargs, config, match",
    [
        ({"n": 0}, DigitCanvasConfig(), "n:"),
        ({"n": 2, "split": "val"}, DigitCanvasConfig(), "split"),
        ({"n": 2}, DigitCanvasConfig(digit_size=40), "digit_size"),
        ({"n": 2}, DigitCanvasConfig(min_digits=3, max_digits=2), "min_digits"),
        ({"n": 2}, DigitCanvasConfig(classes=(11,)), "classes"),
    ],
)
def test_bad_arguments(kwargs, config, match):
    with pytest.raises(ValueError, match=match):
        make_digit_canvas(config=config, **kwargs)
