"""Model surgery on any nn.Module; every operation returns (new_model, SurgeryReport)."""
from .measure import (count_macs, count_params, format_table, interleaved_latency, measure_latency, output_error,
                      peak_rss_growth_mib)
from .report import LayerChange, SurgeryReport
from .bnstats import randomize_bn_stats
from .compare import CompareReport, compare
from .freeze import EvalBatchNorm1d, EvalBatchNorm2d, EvalBatchNorm3d, freeze_bn, unfreeze_bn
from .fuse import bn_scale_shift, fuse_bn, is_batchnorm
from .norms import replace_norm, to_selu
from .factorize import decompose, lowrank
from .replay import SURGERY_STEPS, record_step, replay_surgery
from .export import ExportError, ExportResult, export_model

__all__ = [
    "LayerChange", "SurgeryReport",
    "CompareReport", "EvalBatchNorm1d", "EvalBatchNorm2d", "EvalBatchNorm3d", "bn_scale_shift", "compare",
    "freeze_bn", "fuse_bn", "is_batchnorm", "randomize_bn_stats", "replace_norm", "to_selu", "unfreeze_bn",
    "decompose", "lowrank", "SURGERY_STEPS", "record_step", "replay_surgery",
    "ExportError", "ExportResult", "export_model",
    "count_macs", "count_params", "format_table", "interleaved_latency", "measure_latency", "output_error", "peak_rss_growth_mib",
]
