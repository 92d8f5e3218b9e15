"""Data: built-in datasets (shipped inside installed packages or generated) and file readers."""

from ..utils.moved import point_moved_modules, point_moved_names
from ..utils.plots import save_image_grid
from .aeon_sets import RealDataset, list_real_datasets, load_real_dataset
from .augment import AUGMENTATIONS, augment_batch, flip_permute
from .decode import BACKGROUND, decode_image
from .digits import load_digits
from .expressions import Expression, parse_expression
from .images import (
    ImageData,
    ImageFolder,
    ImageFolderSplit,
    load_image_dataset,
    load_image_file,
    open_image_dataset,
    write_image_folder,
)
from .layout import FolderLayout, folder_layout
from .loader import DEFAULT_WORKERS, EpochBatchSampler, epoch_permutation, make_loader
from .real_tasks import REAL_TASKS, make_real_task, write_real_task
from .regression import expand_bounds, parse_domain, rmse, sample_band, sample_box
from .segmentation import NUM_SEG_CLASSES, DigitCanvas, DigitCanvasConfig, make_digit_canvas
from .sequences import SequenceData, Shard, from_arrays, open_npy, open_shards
from .synthetic_task import LONG_TASK, LONG_TASK_CLASSES, make_long_task, write_long_task
from .tabular import read_csv_table

# Public names that moved: importing them from their old place fails with one line naming the new home.
point_moved_names(
    f"{__name__}.images",
    {"archkit.utils.plots": ("save_image_grid",), "archkit.data.folder": ("EXTENSIONS", "TEST_FRACTION")},
)
point_moved_names(
    f"{__name__}.sequences",
    {
        "archkit.data.synthetic_task": ("LONG_TASK", "LONG_TASK_CLASSES", "make_long_task", "write_long_task"),
        "archkit.data.aeon_sets": ("RealDataset", "SEQ_EXTRA_HINT", "list_real_datasets", "load_real_dataset"),
    },
)
point_moved_modules(
    {f"{__name__}.long_task": f"{__name__}.synthetic_task", f"{__name__}.longtasks": f"{__name__}.real_tasks"}
)

__all__ = [
    "AUGMENTATIONS",
    "BACKGROUND",
    "DEFAULT_WORKERS",
    "LONG_TASK",
    "LONG_TASK_CLASSES",
    "NUM_SEG_CLASSES",
    "REAL_TASKS",
    "DigitCanvas",
    "DigitCanvasConfig",
    "EpochBatchSampler",
    "Expression",
    "FolderLayout",
    "ImageData",
    "ImageFolder",
    "ImageFolderSplit",
    "RealDataset",
    "SequenceData",
    "Shard",
    "augment_batch",
    "decode_image",
    "epoch_permutation",
    "expand_bounds",
    "flip_permute",
    "folder_layout",
    "from_arrays",
    "list_real_datasets",
    "load_digits",
    "load_image_dataset",
    "load_image_file",
    "load_real_dataset",
    "make_digit_canvas",
    "make_loader",
    "make_long_task",
    "make_real_task",
    "open_image_dataset",
    "open_npy",
    "open_shards",
    "parse_domain",
    "parse_expression",
    "read_csv_table",
    "rmse",
    "sample_band",
    "sample_box",
    "save_image_grid",
    "write_image_folder",
    "write_long_task",
    "write_real_task",
]
