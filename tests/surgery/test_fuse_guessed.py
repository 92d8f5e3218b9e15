"""fuse_bn without example_inputs learns each BN's input rank from the inputs it guesses."""

import torch
from torch import nn

from archkit.surgery import fuse_bn, is_batchnorm, output_error, randomize_bn_stats


def test_linear_bn1d_folds_on_guessed_2d_inputs():
    blocks = []
    for i in range(5):
        blocks += (
            [nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Tanh()] if i % 2 == 0 else [nn.BatchNorm1d(6), nn.Linear(6, 6)]
        )
    model = randomize_bn_stats(nn.Sequential(*blocks), seed=1).eval()
    x = torch.randn(8, 6)
    with torch.no_grad():
        ref = model(x)
    fused, report = fuse_bn(model)  # no example_inputs: a (N, 6) input is guessed from the first Linear
    assert sum(is_batchnorm(m) for m in fused.modules()) <= 1, report.to_table()
    with torch.no_grad():
        _, rel = output_error(ref, fused(x))
    assert rel <= 1e-5
    assert "guessed" in report.verification
    note = next(n for n in report.notes if "guessed 2-D" in n)  # the fold rests on the guess: the report says so
    assert "pass example_inputs" in note


def test_given_inputs_fold_without_the_guess_note():
    model = randomize_bn_stats(nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6)), seed=3).eval()
    _, report = fuse_bn(model, example_inputs=torch.randn(4, 6))
    assert len(report.by_action("folded")) == 1
    assert not any("guessed" in n for n in report.notes)


def test_linear_bn1d_on_3d_input_still_refused():
    class Seq(nn.Module):  # Linear on the last dim, BN1d on dim 1 of a (N, C, L) input: no shared feature dim
        def __init__(self):
            super().__init__()
            self.lin, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn(self.lin(x))

    model = randomize_bn_stats(Seq(), seed=2).eval()
    _, report = fuse_bn(model, example_inputs=torch.randn(2, 4, 4))
    assert not report.by_action("folded")
