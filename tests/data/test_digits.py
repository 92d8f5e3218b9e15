import pytest
import torch

from archkit.data import load_digits


def test_fixed_split_and_sizes():
    x_tr, _y_tr = load_digits("train")
    x_te, y_te = load_digits("test", image_size=32)
    assert x_tr.shape[1:] == (1, 8, 8) and x_te.shape[1:] == (1, 32, 32)
    assert len(x_tr) + len(x_te) == 1797
    assert set(y_te.tolist()) == set(range(10))
    assert x_te.min() >= 0.0 and x_te.max() <= 1.0
    torch.testing.assert_close(load_digits("test")[1], y_te)
    with pytest.raises(ValueError, match="split"):
        load_digits("val")
