"""compare: one side-by-side report of two models (params, MACs, CPU latency, output error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .guard import flat_output
from .measure import count_macs, count_params, format_table, interleaved_latency, output_error


@dataclass
class CompareReport:
    """Reference vs candidate on the same input; latencies are medians measured interleaved, in seconds."""

    reference_params: int
    candidate_params: int
    reference_macs: int
    candidate_macs: int
    reference_latency_s: float
    candidate_latency_s: float
    max_abs_error: float
    rel_error: float
    repeats: int

    @property
    def latency_ratio(self) -> float:
        """candidate / reference median latency (< 1: the candidate is faster)."""
        return self.candidate_latency_s / self.reference_latency_s if self.reference_latency_s > 0 else float("nan")

    @property
    def params_ratio(self) -> float:
        return self.candidate_params / self.reference_params if self.reference_params else float("nan")

    @property
    def macs_ratio(self) -> float:
        return self.candidate_macs / self.reference_macs if self.reference_macs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Fields plus the ratios, for JSON."""
        return {
            **self.__dict__,
            "latency_ratio": self.latency_ratio,
            "params_ratio": self.params_ratio,
            "macs_ratio": self.macs_ratio,
        }

    def to_table(self) -> str:
        rows = [
            ["params", self.reference_params, self.candidate_params, self.params_ratio],
            ["MACs", self.reference_macs, self.candidate_macs, self.macs_ratio],
            ["latency ms (median)", self.reference_latency_s * 1e3, self.candidate_latency_s * 1e3, self.latency_ratio],
        ]
        table = format_table(["metric", "reference", "candidate", "candidate/reference"], rows)
        return (
            f"{table}\noutput error: max-abs {self.max_abs_error:.3g}, relative {self.rel_error:.3g}"
            f" (latency: median of {self.repeats} interleaved runs)"
        )

    def __str__(self) -> str:
        return self.to_table()


def _flat_output(out: Any, argument: str) -> torch.Tensor:
    return flat_output(out, f"compare: {argument}")


@torch.no_grad()
def compare(reference: nn.Module, candidate: nn.Module, example_inputs: Any, repeats: int = 20) -> CompareReport:
    """Params, MACs (torch.utils.flop_counter), interleaved median CPU latency and output error of two models.

    Both run in eval mode under no_grad; their previous train/eval modes are restored afterwards.
    """
    for argument, model in (("reference", reference), ("candidate", candidate)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"compare: argument {argument!r} must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"compare: repeats must be a positive int, got {repeats!r}")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    modes = (reference.training, candidate.training)
    reference.eval()
    candidate.eval()
    try:
        ref_out = _flat_output(reference(*inputs), "reference")
        cand_out = _flat_output(candidate(*inputs), "candidate")
        if ref_out.shape != cand_out.shape:
            raise ValueError(
                f"compare: output sizes differ: reference {ref_out.numel()} vs candidate {cand_out.numel()}"
            )
        max_abs, rel = output_error(ref_out, cand_out)
        latency = interleaved_latency(
            {"reference": lambda: reference(*inputs), "candidate": lambda: candidate(*inputs)}, repeats=repeats
        )
        return CompareReport(
            reference_params=count_params(reference),
            candidate_params=count_params(candidate),
            reference_macs=count_macs(reference, inputs),
            candidate_macs=count_macs(candidate, inputs),
            reference_latency_s=latency["reference"],
            candidate_latency_s=latency["candidate"],
            max_abs_error=max_abs,
            rel_error=rel,
            repeats=repeats,
        )
    finally:
        reference.train(modes[0])
        candidate.train(modes[1])
