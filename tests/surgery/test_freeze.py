import io

import pytest
import torch
from torch import nn

from archkit.models import create_model, example_input
from archkit.surgery import EvalBatchNorm2d, freeze_bn, fuse_bn, randomize_bn_stats, unfreeze_bn


def _stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def test_freeze_train_mode_batch1_equals_eval_and_keeps_stats():
    model = randomize_bn_stats(create_model("resnet-digits"), seed=1)
    x = example_input("resnet-digits", batch_size=1)
    frozen, report = freeze_bn(model)
    assert len(report.by_action("frozen")) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    before = _stats(frozen)
    with torch.no_grad():
        expected = frozen.eval()(x)
    frozen.train()
    out = frozen(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    after = _stats(frozen)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m.training for m in frozen.modules() if isinstance(m, nn.BatchNorm2d))
    bn_params = [p for m in frozen.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert bn_params and not any(p.requires_grad for p in bn_params)
    out.sum().backward()  # the rest still trains
    assert frozen.head.weight.grad is not None and all(p.grad is None for p in bn_params)


def test_state_dict_round_trip_and_key_compatibility():
    model = randomize_bn_stats(create_model("resnet-digits"), seed=2).eval()
    frozen, _ = freeze_bn(model)
    assert frozen.state_dict().keys() == model.state_dict().keys()
    buf = io.BytesIO()
    torch.save(frozen.state_dict(), buf)
    buf.seek(0)
    fresh, _ = freeze_bn(create_model("resnet-digits"))
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    x = example_input("resnet-digits", 2)
    fresh.train()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    assert isinstance(fresh.stem[0].norm, EvalBatchNorm2d)


def test_unfreeze_restores_trainable_bn():
    model = randomize_bn_stats(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), 0)
    frozen, _ = freeze_bn(model)
    thawed, report = unfreeze_bn(frozen)
    assert type(thawed[1]) is nn.BatchNorm2d and len(report.changes) == 1
    assert all(p.requires_grad for p in thawed[1].parameters())
    thawed.train()
    mean = thawed[1].running_mean.clone()
    thawed(torch.randn(2, 3, 4, 4))
    assert not torch.equal(mean, thawed[1].running_mean)  # statistics update again


def test_frozen_model_still_folds():
    model = randomize_bn_stats(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), 0)
    frozen, _ = freeze_bn(model)
    _fused, report = fuse_bn(frozen.train())  # frozen BN never enters train mode, so it is foldable
    assert len(report.by_action("folded")) == 1


def test_freeze_notes_and_errors():
    _model, report = freeze_bn(nn.Sequential(nn.Linear(2, 2)))
    assert "no BatchNorm" in report.notes[0]
    _, report = freeze_bn(nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)))
    assert "track_running_stats" in report.skipped[0].reason
    with pytest.raises(TypeError, match=r"'model' must be a torch.nn.Module"):
        freeze_bn(None)
    with pytest.raises(TypeError, match="TorchScript"):
        freeze_bn(torch.jit.script(nn.Sequential(nn.BatchNorm1d(2))), inplace=True)
