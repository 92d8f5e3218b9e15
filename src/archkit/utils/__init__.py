"""Small helpers every floor uses: tables, figures and image grids, facts about modules."""

from .modules import count_params, example_inputs_for, param_dtype_device
from .plots import new_figure, save_figure, save_image_grid
from .tables import format_table, markdown_table, mean_std

__all__ = [
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
