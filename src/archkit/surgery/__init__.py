"""Model surgery on any nn.Module; every operation returns (new_model, SurgeryReport)."""

from ..utils.moved import point_moved_names
from .bnfold import bn_scale_shift
from .bnstats import randomize_bn_stats
from .compare import CompareReport, compare
from .edit import is_batchnorm
from .export import ExportError, ExportResult, export_model
from .factorize import decompose, lowrank
from .freeze import EvalBatchNorm1d, EvalBatchNorm2d, EvalBatchNorm3d, freeze_bn, unfreeze_bn
from .fuse import fuse_bn
from .measure import (
    count_macs,
    count_params,
    format_table,
    interleaved_latency,
    measure_latency,
    output_error,
    peak_rss_growth_mib,
)
from .norms import replace_norm, to_selu
from .replay import SURGERY_STEPS, record_step, replay_surgery
from .report import LayerChange, SurgeryReport

# Public names that moved: importing them from their old place fails with one line naming the new home.
point_moved_names(
    f"{__name__}.fuse",
    {
        "archkit.surgery.bnfold": ("bn_scale_shift", "fold_into_consumer", "fold_into_producer"),
        "archkit.surgery.edit": ("BN_TYPES",),
    },
)

__all__ = [
    "SURGERY_STEPS",
    "CompareReport",
    "EvalBatchNorm1d",
    "EvalBatchNorm2d",
    "EvalBatchNorm3d",
    "ExportError",
    "ExportResult",
    "LayerChange",
    "SurgeryReport",
    "bn_scale_shift",
    "compare",
    "count_macs",
    "count_params",
    "decompose",
    "export_model",
    "format_table",
    "freeze_bn",
    "fuse_bn",
    "interleaved_latency",
    "is_batchnorm",
    "lowrank",
    "measure_latency",
    "output_error",
    "peak_rss_growth_mib",
    "randomize_bn_stats",
    "record_step",
    "replace_norm",
    "replay_surgery",
    "to_selu",
    "unfreeze_bn",
]
