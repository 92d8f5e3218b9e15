"""Classifier-based rejection sampling: exactly the requested share kept, only the requested class."""

import pytest
import torch

from archkit.train import generate
from archkit.train.generate import class_confidence, rejection_sample, select_most_confident


class StubClassifier(torch.nn.Module):
    """Reads the class off pixel (0, 0, 0) * 10 and its confidence off pixel (0, 0, 1)."""

    def forward(self, x):
        cls = (x[:, 0, 0, 0] * 10).round().long().clamp(0, 9)
        logits = torch.full((len(x), 10), -5.0)
        logits[torch.arange(len(x)), cls] = x[:, 0, 0, 1] * 10
        return logits


def _fake_sampler(calls):
    def fake(run, n, labels, temperature=1.0, seed=0, batch_size=100, method="fast", **accel_choice):
        calls.append((n, labels.clone()))
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, 1, 4, 4, generator=g)
        # every other draw looks like its own class, the rest like class 9 (a "wrong" sample)
        looks = torch.where(torch.arange(n) % 2 == 0, labels, torch.full_like(labels, 9))
        x[:, 0, 0, 0] = looks.double().div(10).float()
        return x, [torch.arange(n).view(n, 1, 1)]

    return fake


@pytest.mark.parametrize("keep", [0.5, 0.25])
def test_rejection_keeps_exactly_the_fraction_and_only_the_requested_class(monkeypatch, keep):
    calls = []
    monkeypatch.setattr(generate, "sample_images", _fake_sampler(calls))
    labels = torch.tensor([3] * 6 + [5] * 2 + [3] * 2)  # 8 of class 3, 2 of class 5, interleaved slots
    clf = StubClassifier()
    images, codes, info = rejection_sample("unused", labels, keep, clf, seed=1)
    n_drawn, drawn_labels = calls[0]
    assert n_drawn == info["drawn"] == 8 / keep + 2 / keep
    assert info["kept"] == len(images) == len(labels)
    for k, n in ((3, 8), (5, 2)):
        assert int((drawn_labels == k).sum()) == n / keep  # per class: exactly n / keep drawn, n kept
    # only the requested class: every kept image is classified as the class of its slot
    assert torch.equal(clf(images).argmax(1), labels)
    # and they are the most confident ones of their class
    kept_idx = codes[0].flatten()
    drawn_images, _ = _fake_sampler([])("unused", n_drawn, drawn_labels, seed=1)
    scores = class_confidence(clf, drawn_images, drawn_labels)
    for k in (3, 5):
        pool = (drawn_labels == k).nonzero().flatten()
        chosen = kept_idx[labels == k]
        assert scores[chosen].min() >= scores[pool[~torch.isin(pool, chosen)]].max()
    assert info["mean_confidence_kept"] > info["mean_confidence_drawn"]


def test_select_most_confident_orders_by_score_per_class():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2, 0.7])
    drawn = torch.tensor([0, 0, 0, 1, 1, 1])
    idx = select_most_confident(scores, drawn, torch.tensor([1, 0, 0]))
    assert idx.tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="class 1: 4 samples requested but only 3 drawn"):
        select_most_confident(scores, drawn, torch.tensor([1, 1, 1, 1]))


def test_bad_keep_and_labels_are_clear_errors():
    with pytest.raises(ValueError, match=r"keep: expected a fraction in \(0, 1\]"):
        rejection_sample("unused", torch.tensor([1]), 0.0, StubClassifier())
    with pytest.raises(ValueError, match="labels: rejection sampling"):
        rejection_sample("unused", None, 0.5, StubClassifier())
