import pytest
import torch

from archkit.models import MODEL_KINDS, SequenceClassifier, SequenceClassifierConfig, load_model
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


@pytest.mark.parametrize("bad", [dict(frontend="fft"), dict(pool="attention"), dict(hidden=0), dict(num_classes=1),
                                 dict(dropout=1.5), dict(conv_kernel=4)])
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
