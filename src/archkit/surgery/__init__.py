"""Model surgery on any nn.Module; every operation returns (new_model, SurgeryReport)."""
from .measure import count_macs, count_params, format_table, interleaved_latency, measure_latency, output_error
from .report import LayerChange, SurgeryReport

__all__ = [
    "LayerChange", "SurgeryReport",
    "count_macs", "count_params", "format_table", "interleaved_latency", "measure_latency", "output_error",
]
