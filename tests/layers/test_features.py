import pytest
import torch

from archkit.layers import (
    FeatureStack,
    Identity,
    IdentityFeatures,
    Polynomial,
    RandomFourier,
    Sinusoidal,
    create_feature,
    create_features,
)


@pytest.mark.parametrize(
    "fmap, in_dim",
    [
        (Identity(), 3),
        (Identity(columns=[2]), 3),
        (Sinusoidal([1.0, 2.0]), 3),
        (Sinusoidal([1.0], columns=[0, 2]), 3),
        (Sinusoidal([1.0, 3.0], learnable=True), 2),
        (Polynomial(3), 2),
        (Polynomial(2, columns=[1]), 4),
        (RandomFourier(16, 0.5), 3),
        (RandomFourier(8, 1.0, columns=[0]), 3),
        (FeatureStack([Sinusoidal([1.0], columns=[0]), Polynomial(2)]), 2),
        (FeatureStack([]), 5),
    ],
)
def test_shapes_match_out_features_and_gradients_flow(fmap, in_dim):
    x = torch.randn(7, in_dim, requires_grad=True)
    out = fmap(x)
    assert out.shape == (7, fmap.out_features(in_dim))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_sinusoidal_values_and_learned_frequencies():
    x = torch.tensor([[0.5, 2.0]])
    out = Sinusoidal([1.0, 2.0], columns=[1])(x)
    expected = torch.tensor(
        [
            [
                torch.sin(torch.tensor(2.0)),
                torch.sin(torch.tensor(4.0)),
                torch.cos(torch.tensor(2.0)),
                torch.cos(torch.tensor(4.0)),
            ]
        ]
    )
    torch.testing.assert_close(out, expected)
    learned = Sinusoidal([1.0], learnable=True)
    learned(torch.randn(5, 2)).sum().backward()
    assert learned.frequencies.grad is not None and learned.frequencies.grad.abs().sum() > 0
    assert "frequencies" not in dict(Sinusoidal([1.0]).named_parameters())


def test_polynomial_powers():
    out = Polynomial(3)(torch.tensor([[2.0, -1.0]]))
    assert out.tolist() == [[2.0, -1.0, 4.0, 1.0, 8.0, -1.0]]


def test_random_fourier_is_seeded_and_survives_state_dict():
    x = torch.randn(10, 3)
    a, b = RandomFourier(8, 1.0, seed=3), RandomFourier(8, 1.0, seed=3)
    a.adapt(x * 5 + 2)
    torch.testing.assert_close(RandomFourier(8, 1.0, seed=3)(x), b(x))
    c = RandomFourier(8, 1.0, seed=99)
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c(x), a(x))
    assert not torch.allclose(a(x), b(x))  # adapt() changed the input standardization


def test_stack_keeps_raw_inputs_first():
    x = torch.randn(4, 2)
    stack = FeatureStack([Polynomial(2)])
    torch.testing.assert_close(stack(x)[:, :2], x)
    assert FeatureStack([Polynomial(2)], keep_input=False).out_features(2) == 4


def test_factory_parses_specs_and_columns_by_name():
    assert isinstance(create_feature("poly3"), Polynomial) and create_feature("poly3").degree == 3
    s = create_feature("sin@1,5:y", input_names=["x", "y"])
    assert isinstance(s, Sinusoidal) and s.columns == [1] and s.frequencies.tolist() == [1.0, 5.0]
    assert isinstance(create_feature("learnsin4").frequencies, torch.nn.Parameter)
    rf = create_feature("fourier64@0.5")
    assert isinstance(rf, RandomFourier) and rf.num_features == 64 and rf.scale == 0.5
    assert IdentityFeatures is Identity
    stack = create_features(["sin", "poly2"])
    assert stack.out_features(2) == 2 + 4 + 4
    assert create_features("sin+poly2").out_features(2) == stack.out_features(2)
    assert create_features(["identity"]).out_features(3) == 3  # not duplicated next to the kept raw inputs


@pytest.mark.parametrize("spec", ["cosine", "poly", "fourier", "sin:z", "poly0"])
def test_factory_rejects_unknown_specs_listing_choices(spec):
    with pytest.raises(ValueError, match=r"sin|poly|fourier|column|degree"):
        create_feature(spec, input_names=["x", "y"])


def test_bad_columns_are_named():
    with pytest.raises(ValueError, match="out of range"):
        Sinusoidal([1.0], columns=[3])(torch.randn(2, 2))
