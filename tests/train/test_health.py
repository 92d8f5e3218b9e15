"""Codebook health: window usage and perplexity, dead codes, one warning per level until it recovers."""

import pytest
import torch

from archkit.train.health import CodebookHealth, format_health


def test_usage_perplexity_and_dead_codes_per_level():
    h = CodebookHealth([4, 8], dead_after=3, warmup=0)
    top = torch.tensor([[0, 1], [2, 3]])  # all 4 codes, uniformly
    bottom = torch.zeros(2, 4, 4, dtype=torch.long)  # one code of 8
    for _ in range(3):
        h.update([top, bottom])
    levels = h.summary()
    assert levels[0]["usage"] == 1.0 and levels[0]["perplexity"] == pytest.approx(4.0) and levels[0]["dead"] == 0
    assert levels[1]["usage"] == 1 / 8 and levels[1]["perplexity"] == pytest.approx(1.0) and levels[1]["dead"] == 7
    assert format_health(levels) == "use 100%/12% ppl 4/1 dead 0/7"
    h.update([torch.tensor([0]), bottom])  # a new window: only this step counts
    assert h.summary()[0]["usage"] == 0.25


def test_low_usage_warns_once_until_it_recovers():
    h = CodebookHealth([8], dead_after=1, warmup=2)
    low = [torch.tensor([0, 1])]
    h.update(low)
    assert h.warnings_for(h.summary()) == []  # still warming up
    h.update(low)
    with pytest.warns(RuntimeWarning, match=r"level 0 \(top\) uses 25% of its 8 codes \(6 dead\).*try --quantizer fsq"):
        assert len(h.warn(h.summary(), hint="--quantizer fsq")) == 1
    h.update(low)
    assert h.warnings_for(h.summary()) == []  # said once
    h.update([torch.arange(8)])
    assert h.warnings_for(h.summary()) == []  # recovered
    h.update(low)
    assert len(h.warnings_for(h.summary())) == 1  # dropped again: warned again


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_codes"):
        CodebookHealth([])
    with pytest.raises(ValueError, match="dead_after"):
        CodebookHealth([4], dead_after=0)
    with pytest.raises(ValueError, match="codes: expected 1"):
        CodebookHealth([4]).update([torch.tensor([0]), torch.tensor([1])])
