"""`archkit` command line: a click group whose subcommands are imported only when used.

Each command lives in its own module under archkit.cli; add it to COMMANDS as "module:attribute".
Lazy loading keeps `archkit --help` fast and keeps one broken optional extra from breaking the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", one-line help shown by `archkit --help`)
    "study": ("archkit.cli.study:study", "Run a study that answers an architecture question; writes report.md + plot."),
    "surgery": (
        "archkit.cli.surgery:surgery",
        "Model surgery: fuse, freeze, replace-norm, selu, lowrank, decompose, compare (with a report table).",
    ),
    "seq": (
        "archkit.cli.seq:seq",
        "Train/predict long-sequence classifiers (stacked LSTMs, streamed .npy, aeon datasets).",
    ),
    "vqvae": (
        "archkit.cli.vqvae:vqvae",
        "VQ-VAE-2: train (torchrun-ready, resumable), encode datasets to codes, reconstruct.",
    ),
    "prior": ("archkit.cli.prior:prior", "Gated PixelCNN priors over a run's VQ-VAE-2 codes: train (resumable)."),
    "sample": (
        "archkit.cli.prior:sample",
        "Sample images from a run's priors (top level down) and decode them to a PNG grid.",
    ),
    "evaluate": (
        "archkit.cli.prior:evaluate",
        "Class agreement, CAS and Frechet distance of a run's samples vs real/uniform.",
    ),
    "fit": (
        "archkit.cli.fit:fit",
        "Fit y = f(x) from an expression or a CSV with an MLP + priors; RMSE in/out of domain + PNG.",
    ),
    "export": (
        "archkit.cli.export:export",
        "Export a checkpoint (surgery replayed) to ONNX or .pt2, checked against PyTorch.",
    ),
    "demo": (
        "archkit.cli.demo:demo",
        "The main job: VQ-VAE-2 + priors on digits end to end; writes runs/demo/report.md.",
    ),
}


def one_line(error: BaseException) -> str:
    """An exception as one line of text (OSError keeps its path; multi-line messages are joined)."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class BadInput(click.ClickException):
    """The user's input cannot be used: one line ("Error: ..."), exit status 2 like click's usage errors."""

    exit_code = 2


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> Any:
        # Bad input surfaces as ValueError (bad values, malformed or corrupt files) or OSError
        # (missing, unreadable or unwritable paths) with a message naming the argument or file:
        # show that message on one line, not a stack trace from deep inside torch.
        # A bad flag value is one line too ("Error: Invalid value for '--keep': ..."), without the usage text.
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            raise BadInput(" ".join(e.format_message().split())) from e
        except (ValueError, OSError) as e:
            raise BadInput(one_line(e)) from e

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archkit")
def cli() -> None:
    """archkit: working, tested, measured answers to common architecture questions."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="archkit")


if __name__ == "__main__":
    main()
