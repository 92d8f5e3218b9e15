"""Helpers shared by the model tests."""

import pytest


def _input_grad(model, codes, at, labels=None, cond=None):
    """|d logits[0, :, i, j] / d embedding(codes)| summed over channels: (H, W)."""
    store = {}

    def hook(_, __, out):
        out.retain_grad()
        store["emb"] = out

    handle = model.embed.register_forward_hook(hook)
    try:
        model(codes, labels, cond)[0, :, at[0], at[1]].sum().backward()
    finally:
        handle.remove()
    return store["emb"].grad[0].abs().sum(-1)


@pytest.fixture
def input_grad():
    """The gradient map of one output position w.r.t. the embedded input codes (causality tests)."""
    return _input_grad
