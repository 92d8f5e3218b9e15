import pytest
import torch

from archkit.loading import load_model
from archkit.models import MODEL_KINDS, SequenceClassifier, SequenceClassifierConfig
from archkit.models.sequence import MaskedBatchNorm1d
from archkit.train import save_checkpoint


def tiny(**kw) -> SequenceClassifier:
    cfg = dict(in_features=3, num_classes=4, hidden=8, layers=2, conv_channels=6, conv_kernel=5, conv_stride=2)
    cfg.update(kw)
    return SequenceClassifier(SequenceClassifierConfig(**cfg)).eval()


@pytest.mark.parametrize("frontend", ["none", "conv"])
def test_shapes_with_and_without_lengths(frontend):
    model = tiny(frontend=frontend)
    x = torch.randn(5, 33, 3)
    assert model(x).shape == (5, 4)
    assert model(x, torch.tensor([33, 1, 7, 20, 2])).shape == (5, 4)


@pytest.mark.parametrize("frontend", ["none", "conv"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pool", ["last", "mean", "max"])
def test_garbage_padding_never_changes_the_logits(frontend, bidirectional, pool):
    model = tiny(frontend=frontend, bidirectional=bidirectional, pool=pool)
    lengths = [29, 12, 5, 1]
    seqs = [torch.randn(1, n, 3) for n in lengths]
    padded = torch.randn(len(lengths), 40, 3) * 1e3  # garbage, not zeros: zeros could hide a leak
    for i, s in enumerate(seqs):
        padded[i, : lengths[i]] = s[0]
    with torch.no_grad():
        batched = model(padded, torch.tensor(lengths))
        alone = torch.cat([model(s) for s in seqs])
        ignored = model(padded)  # without lengths the garbage is data: logits must differ
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ignored, alone, atol=1e-3)


def test_last_pool_uses_the_last_valid_step_not_the_padded_end():
    model = tiny(pool="last")
    x = torch.randn(1, 10, 3)
    with torch.no_grad():
        a = model(x, torch.tensor([6]))
        b = model(x[:, :6])
        c = model(x)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_conv_frontend_shortens_the_sequence():
    model = tiny(frontend="conv", conv_stride=4, conv_blocks=2)
    seen = {}
    model.lstm.register_forward_hook(lambda m, i, o: seen.update(t=i[0].shape[1]))
    model(torch.randn(2, 256, 3))
    assert seen["t"] == 256 // 16


@pytest.mark.parametrize(
    "bad",
    [
        dict(frontend="fft"),
        dict(pool="attention"),
        dict(hidden=0),
        dict(num_classes=1),
        dict(dropout=1.5),
        dict(conv_kernel=4),
    ],
)
def test_bad_config_names_the_argument(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        tiny(**bad)


def test_bad_inputs_are_clear():
    model = tiny()
    with pytest.raises(ValueError, match=r"\(batch, timesteps, 3\)"):
        model(torch.randn(4, 10))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 3), torch.tensor([11, 3]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 3), torch.tensor([3]))


def test_registered_and_round_trips_through_a_checkpoint(tmp_path):
    assert MODEL_KINDS["SequenceClassifierConfig"] == (SequenceClassifier, SequenceClassifierConfig)
    model = tiny(frontend="conv", bidirectional=True)
    save_checkpoint(tmp_path, model, model.config)
    loaded = load_model(tmp_path)
    x = torch.randn(2, 20, 3)
    torch.testing.assert_close(loaded(x), model(x))


# --- BatchNorm in the conv frontend and the LSTM-FCN branch (both padding-safe via MaskedBatchNorm1d) ---


def _padded(lengths, total=40, features=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(1, n, features, generator=g) for n in lengths]
    padded = torch.randn(len(lengths), total, features, generator=g) * 1e3  # garbage padding
    for i, s in enumerate(seqs):
        padded[i, : lengths[i]] = s[0]
    return seqs, padded


@pytest.mark.parametrize(
    "kw",
    [
        dict(frontend="conv", conv_stride=1, conv_norm="batch"),
        dict(frontend="conv", conv_stride=2, conv_norm="batch", fcn_channels=4),
        dict(fcn_channels=4),
        dict(fcn_channels=4, bidirectional=True, pool="mean"),
    ],
)
def test_batchnorm_and_fcn_shapes(kw):
    model = tiny(**kw)
    x = torch.randn(5, 33, 3)
    assert model(x).shape == (5, 4)
    assert model(x, torch.tensor([33, 1, 7, 20, 2])).shape == (5, 4)
    model.train()
    assert model(x, torch.tensor([33, 1, 7, 20, 2])).shape == (5, 4)
    if kw.get("fcn_channels"):
        assert model.head.in_features == model.config.hidden * (2 if model.config.bidirectional else 1) + 4


@pytest.mark.parametrize(
    "kw",
    [
        dict(frontend="conv", conv_stride=1, conv_norm="batch"),
        dict(frontend="conv", conv_stride=2, conv_norm="batch"),
        dict(fcn_channels=4),
        dict(frontend="conv", conv_norm="batch", fcn_channels=4, pool="max"),
    ],
)
def test_batchnorm_and_fcn_are_padding_safe_in_eval_mode(kw):
    model = tiny(**kw)
    lengths = [29, 12, 5, 1]
    seqs, padded = _padded(lengths)
    with torch.no_grad():
        batched = model(padded, torch.tensor(lengths))
        alone = torch.cat([model(s) for s in seqs])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", [dict(frontend="conv", conv_stride=1, conv_norm="batch"), dict(fcn_channels=4)])
def test_batchnorm_training_statistics_ignore_padding(kw):
    """In training mode the batch statistics count valid steps only: the padded content and the padded
    length change neither the logits nor the running statistics."""
    lengths = [29, 12, 5, 3]
    _, padded = _padded(lengths)
    other = torch.randn(len(lengths), 55, 3) * -50.0  # different garbage, longer padding
    other[:, :40] = padded
    for i, n in enumerate(lengths):
        other[i, n:] = torch.randn(55 - n, 3) * 77.0
    a, b = tiny(**kw).train(), tiny(**kw).train()
    b.load_state_dict(a.state_dict())
    la, lb = a(padded, torch.tensor(lengths)), b(other, torch.tensor(lengths))
    torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)
    norms = [m for m in a.modules() if isinstance(m, MaskedBatchNorm1d)]
    assert norms
    for ma, mb in zip(norms, [m for m in b.modules() if isinstance(m, MaskedBatchNorm1d)]):
        torch.testing.assert_close(ma.running_mean, mb.running_mean)
        torch.testing.assert_close(ma.running_var, mb.running_var)
        assert int(ma.num_batches_tracked) == 1


def test_masked_batchnorm_matches_batchnorm_without_padding():
    torch.manual_seed(0)
    ours, ref = MaskedBatchNorm1d(5).train(), torch.nn.BatchNorm1d(5).train()
    h = torch.randn(4, 5, 11) * 3 + 1
    full = torch.ones(4, 11, dtype=torch.bool)
    torch.testing.assert_close(ours(h, full), ref(h), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)


def test_defaults_keep_the_old_architecture():
    model = tiny(frontend="conv")
    assert model.fcn is None and model.frontend.norms is None
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(conv_norm="layer", frontend="conv"), "conv_norm"),
        (dict(conv_norm="batch"), "frontend='conv'"),
        (dict(fcn_channels=-1), "fcn_channels"),
        (dict(fcn_channels=2.5), "fcn_channels"),
    ],
)
def test_bad_norm_and_fcn_options_are_clear(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny(**bad)


def test_fcn_model_round_trips_through_a_checkpoint(tmp_path):
    model = tiny(frontend="conv", conv_norm="batch", fcn_channels=4)
    model.train()(torch.randn(3, 20, 3), torch.tensor([20, 9, 4]))  # move the running statistics
    model.eval()
    save_checkpoint(tmp_path, model, model.config)
    loaded = load_model(tmp_path).eval()
    x = torch.randn(2, 15, 3)
    torch.testing.assert_close(loaded(x), model(x))
