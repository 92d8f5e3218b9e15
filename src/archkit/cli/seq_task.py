"""`archkit seq make-task`: write a long task built from real series (needle / order) as .npy shards."""

from __future__ import annotations

from pathlib import Path

import click

from ..data.real_tasks import MAX_CASES, MAX_LENGTH, MIN_LENGTH, TASKS


@click.command("make-task")
@click.argument("task", type=click.Choice(TASKS))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty folder (or one written earlier by make-task): train/ and test/ shards + task.json.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**31 - 1),
    default=0,
    show_default=True,
    help="Fixes which source series go to train and to test, and every case.",
)
@click.option("--n-train", type=click.IntRange(1, MAX_CASES), default=2048, show_default=True)
@click.option("--n-test", type=click.IntRange(1, MAX_CASES), default=512, show_default=True)
@click.option(
    "--length",
    type=click.IntRange(MIN_LENGTH, MAX_LENGTH),
    default=8192,
    show_default=True,
    help="Time steps per case.",
)
@click.option(
    "--shard-size",
    type=click.IntRange(1, MAX_CASES),
    default=256,
    show_default=True,
    help="Cases per .npy shard (memory while writing is one shard).",
)
def make_task(task: str, out_dir: Path, seed: int, n_train: int, n_test: int, length: int, shard_size: int) -> None:
    """Write TASK (needle or order: 8 channels, 4 classes, from series bundled with aeon) as .npy shards.

    Train with `archkit seq train --shards OUT/train` (a held-out share of it) and score on OUT/test.
    """
    from ..data.real_tasks import write_real_task

    folder = write_real_task(out_dir, task, n_train, n_test, seed=seed, length=length, shard_size=shard_size)
    gib = (n_train + n_test) * length * 8 * 4 / 2**30
    click.echo(f"wrote {task}: {n_train} train + {n_test} test cases of {length} x 8 ({gib:.2f} GiB) to {folder}")
