"""Options shared by several commands, defined once: `--device`, `--precision`, `--compile/--no-compile`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..train.accelerate import ACCEL_FIELDS, DEVICE_SPECS, PRECISION_CHOICES, resolve_device


class ExistingFolder(click.Path):
    """A folder that must exist, e.g. `--run` of a command that reads a run: a missing one is named as missing,
    in one line, before anything is looked up inside it."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        name = param.opts[0] if param is not None and param.opts else "path"
        path = Path(value)
        if not path.exists():
            raise click.UsageError(f"{name}: the folder '{path}' does not exist")  # bad input: exit 2, one line
        if not path.is_dir():
            raise click.UsageError(f"{name}: expected a folder, got the file '{path}'")
        return super().convert(value, param, ctx)


EXISTING_RUN = ExistingFolder()


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # checked here so a bad value fails before any data is loaded; the spelling given is what runs save
    try:
        resolve_device(value, flag="--device")
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix("--device: "), ctx=ctx, param=param) from None
    return value


def accel_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add --device, --precision and --compile/--no-compile; they arrive as `device`, `precision`, `compile`."""
    f = click.option(
        "--compile/--no-compile",
        "compile",
        default=False,
        show_default=True,
        help="torch.compile the model (first steps slower while it compiles).",
    )(f)
    f = click.option(
        "--precision",
        type=click.Choice(PRECISION_CHOICES),
        default="32",
        show_default=True,
        help="32: fp32. bf16: bfloat16 autocast. 16-mixed: float16 autocast + gradient scaling. "
        "auto: bf16 where the device computes it natively (CUDA compute capability >= 8.0, a CPU with "
        "AVX512-BF16/AMX), else 32.",
    )(f)
    f = click.option(
        "--device",
        default="auto",
        show_default=True,
        callback=_check_device,
        help=f"{' | '.join(DEVICE_SPECS)}; auto = cuda when available (each torchrun rank: its "
        "LOCAL_RANK's GPU), else cpu.",
    )(f)
    return f


def given_accel_flags(ctx: click.Context | None = None) -> set[str]:
    """Which of device/precision/compile were set on the command line (or by env), not left at the default."""
    return given_flags(ctx) & set(ACCEL_FIELDS)


def given_flags(ctx: click.Context | None = None, rename: dict[str, str] | None = None) -> set[str]:
    """The parameters set on the command line (or by env), not left at the default, by their config field names.

    `rename` maps a parameter's name to its config field (e.g. x_path -> x). `--resume` takes the
    saved value of every field not given (archkit.train.resume).
    """
    ctx = ctx or click.get_current_context()
    rename = rename or {}
    return {
        rename.get(p.name, p.name)
        for p in ctx.command.params
        if p.name
        and ctx.get_parameter_source(p.name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    }


RESUME_HELP = (
    "Continue the run from its last checkpoint as it was saved: flags left out take the saved values; a flag "
    "that would change what the weights were made with (model, quantizer, data, split, seed) is refused. "
    "These may change: {}."
)


__all__ = ["EXISTING_RUN", "RESUME_HELP", "accel_options", "given_accel_flags", "given_flags"]
