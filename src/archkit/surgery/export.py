"""Export any archkit model (after surgery too) to ONNX or a torch.export `.pt2`, checked against PyTorch.

    result = export_model(model, example_inputs, "model.onnx")   # or "model.pt2"; archkit.export is this

The model's outputs are flattened to a tuple of tensors first (VQVAE2 returns a dataclass, which
neither exporter takes). ONNX goes through torch.onnx's dynamo exporter and is checked with
onnxruntime (CPU); pt2 is checked by reloading it with torch.export.load. Either way the exported
outputs must match eager PyTorch on the example inputs to `rtol` (relative error ||a - b|| / ||a||
per output; integer outputs must match exactly), or an ExportError says by how much. When an op
cannot export, every submodule is exported alone (deepest first, in call order) and the error names
the first one that fails, with the exporter's own reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path
from ..io.outfile import KIND_KEY, OWN_MARK, check_out_file, json_mark
from .measure import output_error

FORMATS = ("onnx", "pt2")
EXPORT_KIND = "exported model"  # the kind its mark names (io/outfile.py)
EXPORT_EXTRA_HINT = "install the `export` extra: pip install 'archkit[export]' (onnx, onnxscript, onnxruntime)"


class ExportError(ValueError):
    """A model could not be exported, or the exported model disagrees with PyTorch."""


@dataclass
class ExportResult:
    """Where the model went and how well the exported copy matches eager PyTorch on the example inputs."""

    path: str
    format: str
    checked_with: str | None  # "onnxruntime" | "torch.export.load" | None (check=False)
    rel_error: float | None  # worst output's ||a - b|| / ||a||
    max_abs_error: float | None
    outputs: int


class _FlatOutputs(nn.Module):
    """The model with its output flattened to a tuple of tensors (dataclasses, dicts, lists; None dropped)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> tuple[torch.Tensor, ...]:
        return tuple(_leaves(self.model(*args)))


def _leaves(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if out is None:
        return []
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out, key=str)]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _leaves(o)]
    if isinstance(out, (int, float)):
        return []  # Python numbers are constants of the trace, not graph outputs
    raise ExportError(
        f"model: returned {type(out).__name__}; export needs tensors (or tuples/lists/dicts/dataclasses of them)"
    )


def _as_args(example_inputs: Any) -> tuple:
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not args or not all(a is None or isinstance(a, torch.Tensor) for a in args):
        raise ExportError(
            f"example_inputs: expected a tensor or a tuple of tensors, got {type(example_inputs).__name__}"
        )
    while args and args[-1] is None:  # trailing optional arguments left at their defaults
        args = args[:-1]
    if any(a is None for a in args):
        raise ExportError("example_inputs: None is only allowed after the last tensor (optional trailing arguments)")
    return args


def _format_of(path: Path, format: str | None) -> str:
    fmt = format or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ExportError(
            f"format: expected one of {list(FORMATS)} (or a path ending in .onnx / .pt2), got "
            f"{format!r} for {str(path)!r}"
        )
    return fmt


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The ONNX exporter prints progress and warns about every decomposition; keep that out of the user's output."""
    buf = io.StringIO()
    # torch's own loggers hold the real stderr, so redirecting sys.stderr does not reach them: the exporter's
    # registry warns once per torchvision op it cannot register ("torchvision is not installed. Skipping ...")
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _write(module: nn.Module, args: tuple, path: Path, fmt: str, opset: int | None) -> None:
    with _quiet(), torch.no_grad():
        mark = {"written_by": OWN_MARK, KIND_KEY: EXPORT_KIND}  # `archkit export` may write over its own exports
        if fmt == "pt2":
            program = torch.export.export(module, args)
            torch.export.save(program, str(path), extra_files={"archkit.json": json.dumps(json_mark(EXPORT_KIND))})
        else:
            import onnx

            names = [f"input{i}" for i in range(len(args))]
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                input_names=names,
                external_data=False,
                opset_version=opset or None,  # None (or 0): the exporter's default
            )
            graph = onnx.load(str(path))
            onnx.helper.set_model_props(graph, mark)
            onnx.save(graph, str(path))


def _reason(e: BaseException) -> str:
    """The innermost cause's first line: what the exporter actually tripped on."""
    seen = e
    while seen.__cause__ is not None:
        seen = seen.__cause__
    lines = [ln.strip() for ln in str(seen).splitlines() if ln.strip()]
    reason = f"{type(seen).__name__}: {lines[0][:300] if lines else ''}"
    if "data-dependent" in reason:
        reason += (
            " (the forward branches on tensor values, e.g. a value check or variable-length packing; an "
            "exported graph cannot: export with inputs that avoid that path, such as fixed-length batches)"
        )
    return reason


def _failing_layer(model: nn.Module, args: tuple, fmt: str, opset: int | None) -> tuple[str, str] | None:
    """(qualified name, reason) of the deepest submodule that fails to export alone, else None."""
    calls: dict[str, tuple] = {}
    depth = {name: name.count(".") + 1 for name, _ in model.named_modules() if name}

    def hook(name: str) -> Callable[[nn.Module, tuple], None]:
        def record(_m: nn.Module, inputs: tuple) -> None:
            calls.setdefault(name, inputs)

        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
    modules = dict(model.named_modules())
    order = sorted(calls, key=lambda n: -depth[n])  # stable: call order within one depth
    with tempfile.TemporaryDirectory(prefix="archkit_export_probe_") as tmp:
        for name in order:
            inputs = calls[name]
            if not all(isinstance(a, torch.Tensor) for a in inputs):
                continue
            try:
                _write(_FlatOutputs(modules[name]), tuple(inputs), Path(tmp) / f"probe.{fmt}", fmt, opset)
            except Exception as e:
                return name, _reason(e)
    return None


def _run_exported(path: Path, fmt: str, args: tuple) -> tuple[list[torch.Tensor], str]:
    if fmt == "pt2":
        with _quiet():
            program = torch.export.load(str(path))
        with torch.no_grad():
            return list(_leaves(program.module()(*args))), "torch.export.load"
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(
            f"checking an ONNX export needs onnxruntime: {EXPORT_EXTRA_HINT} (or pass check=False)"
        ) from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.detach().cpu().numpy() for i, a in zip(session.get_inputs(), args)}
    return [torch.from_numpy(o) for o in session.run(None, feeds)], "onnxruntime"


def export_model(
    model: nn.Module,
    example_inputs: Any,
    path: str | os.PathLike,
    format: str | None = None,
    check: bool = True,
    rtol: float = 1e-4,
    opset: int | None = None,
) -> ExportResult:
    """Export `model` (eval mode) traced on `example_inputs` to ONNX or pt2 at `path`; check it against PyTorch.

    `format` defaults to the path's suffix. The file is written atomically (temp file + rename) and
    removed again when the check fails.
    """
    if not isinstance(model, nn.Module):
        raise ExportError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    path = Path(path)
    fmt = _format_of(path, format)
    check_out_file(path, EXPORT_KIND, "path")  # a user's file is never written over
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise ImportError(f"ONNX export needs onnx and onnxscript: {EXPORT_EXTRA_HINT}") from None
    args = _as_args(example_inputs)
    was_training = model.training
    model.eval()
    flat = _FlatOutputs(model)
    try:
        with torch.no_grad():
            reference = flat(*args)
        result = ExportResult(str(path), fmt, None, None, None, len(reference))
        with atomic_path(path) as tmp:  # a new, unguessable temp name; removed when the export or check fails
            try:
                _write(flat, args, tmp, fmt, opset)
            except Exception as e:
                found = _failing_layer(model, args, fmt, opset)
                where = (
                    f"layer {found[0]!r} ({type(dict(model.named_modules())[found[0]]).__name__}) cannot export: "
                    f"{found[1]}"
                    if found
                    else f"the top-level forward of {type(model).__name__} cannot export (every submodule "
                    f"exports alone): {_reason(e)}"
                )
                raise ExportError(f"export to {fmt}: {where}") from e
            if check:
                got, result.checked_with = _run_exported(tmp, fmt, args)
                result.rel_error, result.max_abs_error = _compare(reference, got, rtol, fmt)
        return result
    finally:
        model.train(was_training)


def _compare(
    reference: tuple[torch.Tensor, ...], got: list[torch.Tensor], rtol: float, fmt: str
) -> tuple[float, float]:
    if len(got) != len(reference):
        raise ExportError(f"export to {fmt}: the exported model returns {len(got)} outputs, PyTorch {len(reference)}")
    worst_rel, worst_abs = 0.0, 0.0
    for i, (ref, out) in enumerate(zip(reference, got)):
        if tuple(out.shape) != tuple(ref.shape):
            raise ExportError(
                f"export to {fmt}: output {i} has shape {tuple(out.shape)}, PyTorch gives {tuple(ref.shape)}"
            )
        if not ref.is_floating_point():
            wrong = int((out.to(ref.dtype) != ref).sum())
            if wrong:
                raise ExportError(
                    f"export to {fmt}: integer output {i} differs from PyTorch in {wrong} of {ref.numel()} entries"
                )
            continue
        abs_err, rel = output_error(ref, out)
        if rel > rtol:
            raise ExportError(
                f"export to {fmt}: output {i} differs from PyTorch by relative error {rel:.2e} "
                f"(max abs {abs_err:.2e}), above rtol={rtol:g}"
            )
        worst_rel, worst_abs = max(worst_rel, rel), max(worst_abs, abs_err)
    return worst_rel, worst_abs
