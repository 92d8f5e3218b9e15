"""Data: built-in datasets (shipped inside installed packages or generated) and file readers."""
from .digits import load_digits
from .segmentation import NUM_SEG_CLASSES, DigitCanvas, DigitCanvasConfig, make_digit_canvas
from .sequences import (
    LONG_TASK, SequenceData, Shard, from_arrays, list_real_datasets, load_real_dataset, make_long_task, open_npy,
    open_shards, write_long_task,
)
from .expressions import Expression, parse_expression
from .tabular import read_csv_table
from .regression import expand_bounds, parse_domain, rmse, sample_band, sample_box
from .images import (
    ImageData, ImageFolder, ImageFolderSplit, load_image_dataset, load_image_file, open_image_dataset, save_image_grid,
    write_image_folder,
)
from .augment import AUGMENTATIONS, augment_batch, flip_permute
from .loader import DEFAULT_WORKERS, EpochBatchSampler, epoch_permutation, make_loader

__all__ = ["Expression", "parse_expression", "read_csv_table", "expand_bounds", "parse_domain", "rmse", "sample_band", "sample_box", "NUM_SEG_CLASSES", "DigitCanvas", "DigitCanvasConfig", "make_digit_canvas",
           "ImageData", "ImageFolder", "ImageFolderSplit", "load_image_dataset", "load_image_file", "open_image_dataset",
           "save_image_grid", "write_image_folder", "load_digits",
           "AUGMENTATIONS", "augment_batch", "flip_permute",
           "DEFAULT_WORKERS", "EpochBatchSampler", "epoch_permutation", "make_loader",
           "LONG_TASK", "SequenceData", "Shard", "from_arrays", "list_real_datasets", "load_real_dataset",
           "make_long_task", "open_npy", "open_shards", "write_long_task"]
