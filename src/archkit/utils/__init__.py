"""Small helpers every floor uses: tables, figures and image grids, facts about modules, argument checks,
one-line warnings about the user's data, pointers for names that moved."""

from .modules import count_params, example_inputs_for, param_dtype_device
from .moved import MovedError
from .notices import ArchkitWarning, FolderLayoutWarning, UnreadableFilesWarning
from .plots import new_figure, save_figure, save_image_grid
from .tables import format_table, markdown_table, mean_std
from .validation import check_choice, check_finite, check_float, check_int, check_range

__all__ = [
    "ArchkitWarning",
    "FolderLayoutWarning",
    "MovedError",
    "UnreadableFilesWarning",
    "check_choice",
    "check_finite",
    "check_float",
    "check_int",
    "check_range",
    "count_params",
    "example_inputs_for",
    "format_table",
    "markdown_table",
    "mean_std",
    "new_figure",
    "param_dtype_device",
    "save_figure",
    "save_image_grid",
]
