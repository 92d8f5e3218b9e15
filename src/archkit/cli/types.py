"""Click parameter types for the numbers users type: bounded on both sides and finite.

click's FloatRange lets "nan" and "inf" through (every comparison with NaN is false); `Real` refuses
them. Upper bounds keep a typo such as `--samples 1e12` from allocating the machine away: each
command states the largest value it accepts in its --help.
"""

from __future__ import annotations

import math
from typing import Any

import click

__all__ = ["Real"]


class Real(click.FloatRange):
    """A finite float within [min, max] (ends open on request); NaN and infinities are refused."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse, refuse NaN and infinities, then check the range."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)
