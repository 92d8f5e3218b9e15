import pytest
import torch
from torch import nn

from archkit.layers import ChannelLayerNorm
from archkit.models import create_model, example_input
from archkit.surgery import randomize_bn_stats, replace_norm, to_selu


@pytest.mark.parametrize("norm, cls", [("group", nn.GroupNorm), ("layer", ChannelLayerNorm), ("identity", nn.Identity)])
def test_replace_norm_kinds(norm, cls):
    model = randomize_bn_stats(create_model("resnet-digits"), 0)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    new, report = replace_norm(model, norm=norm, num_groups=8)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in new.modules()) == 0
    assert sum(type(m) is cls for m in new.modules()) == n_bn == len(report.changes)
    x = example_input("resnet-digits", 1)
    new.train()
    a, b = new(x), new(x)  # batch size 1 in train mode works and is deterministic (no batch statistics)
    torch.testing.assert_close(a, b)
    if norm == "group":
        assert new.stem[0].norm.num_groups == 8
        torch.testing.assert_close(new.stem[0].norm.weight, model.stem[0].norm.weight)  # learned gains kept


def test_group_count_fallback_warns():
    model = nn.Sequential(nn.Conv2d(3, 24, 1), nn.BatchNorm2d(24))
    with pytest.warns(UserWarning, match="largest divisor"):
        new, _ = replace_norm(model, "group", num_groups=16)
    assert new[1].num_groups == 12


def test_replace_norm_bad_input():
    with pytest.raises(ValueError, match=r"norm must be one of \['group', 'layer', 'identity'\], got 'batch'"):
        replace_norm(nn.Sequential(nn.BatchNorm2d(2)), "batch")
    with pytest.raises(ValueError, match="num_groups"):
        replace_norm(nn.Sequential(nn.BatchNorm2d(2)), "group", num_groups=0)
    with pytest.raises(TypeError, match="'model'"):
        replace_norm(42)
    _, report = replace_norm(nn.Sequential(nn.Linear(2, 2)))
    assert "no BatchNorm" in report.notes[0]


def test_to_selu_converts_and_reinitializes():
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Dropout2d(0.1),
        nn.Conv2d(64, 64, 1),
        nn.GELU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(64 * 36, 10),
        nn.LeakyReLU(),
    )
    new, report = to_selu(model)
    kinds = [type(m) for m in new]
    assert kinds == [
        nn.Conv2d,
        nn.Identity,
        nn.SELU,
        nn.FeatureAlphaDropout,
        nn.Conv2d,
        nn.SELU,
        nn.Flatten,
        nn.AlphaDropout,
        nn.Linear,
        nn.SELU,
    ]
    for layer, fan_in in ((new[0], 27), (new[4], 64), (new[8], 64 * 36)):
        assert torch.count_nonzero(layer.bias) == 0
        assert abs(layer.weight.std().item() * fan_in**0.5 - 1) < 0.15
    # self-normalizing: activations stay near zero mean / unit variance deep into a plain stack
    deep = to_selu(
        nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU())])
    )[0]
    out = deep.eval()(torch.randn(512, 256))
    assert abs(out.mean().item()) < 0.2 and abs(out.std().item() - 1) < 0.2
    assert len(report.by_action("reinitialized")) == 3


def test_to_selu_bad_input():
    with pytest.raises(TypeError, match="'model'"):
        to_selu([nn.ReLU()])
