"""fuse_bn: fold inference-mode BatchNorm into the adjacent conv / transposed conv / linear, exactly.

BatchNorm at inference is a per-channel affine map y = x * scale + shift, so it can be absorbed by
the layer that produces its input (conv -> bn) or, when the padding does not get in the way, by the
layer that consumes its output (bn -> conv). The graph is found with torch.fx; modules whose forward
cannot be traced are analysed child by child, and nn.Sequential containers by walking their chain.
The model keeps its own classes and module names: folded BNs become nn.Identity in place.
"""
from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import FrozenBatchNorm
from .guard import (as_args, bn_reason, exact_tolerance, guess_inputs, identity_for, model_error, model_outputs,
                    parameter_owners, probe_input, relative_error, weight_reason)
from .report import SurgeryReport

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_FOLD_AFTER = (*_CONV, *_CONV_T, nn.Linear)  # may absorb a BN that follows them
_FOLD_BEFORE = (*_CONV, nn.Linear)  # may absorb a BN that precedes them
_FUNCTIONAL_BN = {F.batch_norm, torch.batch_norm, torch.native_batch_norm}
BN_TYPES = (_BatchNorm, FrozenBatchNorm)


def is_batchnorm(module: nn.Module) -> bool:
    """True for every BatchNorm flavour archkit folds: nn.BatchNorm*d (and subclasses) and FrozenBatchNorm."""
    return isinstance(module, BN_TYPES)


def check_module(model: object, argument: str = "model", inplace: bool = False, op: str = "surgery") -> None:
    """Raise a clear error for input that surgery cannot work on (not a Module, in-place on TorchScript)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{op}: argument {argument!r} must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        how = "inplace=True cannot edit" if inplace else "cannot edit"
        raise TypeError(
            f"{op}: {how} a TorchScript module ({type(model).__name__}); "
            f"apply {op} to the eager nn.Module first, then script the result"
        )


def set_child(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path `name` (as in named_modules) by `module`."""
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, module)


def bn_scale_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | str:
    """(scale, shift) in float64 with bn(x) == x * scale + shift, or the reason BN is not an affine map."""
    if isinstance(bn, FrozenBatchNorm):
        scale, shift = bn.scale_shift()
        return scale.detach().double(), shift.detach().double()
    if isinstance(bn.weight, nn.parameter.UninitializedParameter):
        return "lazy BatchNorm is not initialized yet (run one forward first)"
    if bn.training:
        return "BN is in train mode: it normalizes with batch statistics (call model.eval() first)"
    if bn.running_mean is None:
        return "BN has no running statistics (track_running_stats=False): it always uses batch statistics"
    inv_std = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
    weight = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(inv_std)
    bias = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(inv_std)
    scale = weight * inv_std
    return scale, bias - bn.running_mean.detach().double() * scale


def _set_weight_bias(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))
        if layer.bias is None:
            layer.bias = nn.Parameter(bias.to(layer.weight), requires_grad=layer.weight.requires_grad)
        else:
            layer.bias.copy_(bias.to(layer.bias.dtype))


def _out_channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _in_channels(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def fold_into_producer(layer: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """layer -> bn  ==>  layer' with W' = W * scale (per output channel), b' = b * scale + shift."""
    w = layer.weight.detach().double()
    out = _out_channels(layer)
    b = layer.bias.detach().double() if layer.bias is not None else w.new_zeros(out)
    if isinstance(layer, _CONV_T):  # weight is (in, out / groups, *k): output channels sit on dim 1
        g = layer.groups
        k = w.shape[2:]
        w = (w.view(g, -1, out // g, *k) * scale.view(g, 1, out // g, *([1] * len(k)))).view_as(layer.weight)
    else:
        w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    _set_weight_bias(layer, w, b * scale + shift)


def fold_into_consumer(layer: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """bn -> layer  ==>  layer' with W' = W * scale (per input channel), b' = b + W @ shift."""
    w = layer.weight.detach().double()
    out = _out_channels(layer)
    b = layer.bias.detach().double() if layer.bias is not None else w.new_zeros(out)
    if isinstance(layer, nn.Linear):
        _set_weight_bias(layer, w * scale.view(1, -1), b + w @ shift)
        return
    g, ipg, k = layer.groups, w.shape[1], w.shape[2:]
    ones = [1] * len(k)
    # weight[o, i] reads input channel group(o) * ipg + i
    s = scale.view(g, 1, ipg).expand(g, out // g, ipg).reshape(out, ipg, *ones)
    t = shift.view(g, 1, ipg).expand(g, out // g, ipg).reshape(out, ipg, *ones)
    _set_weight_bias(layer, w * s, b + (w * t).flatten(1).sum(1))


def _zero_padding_reason(conv: nn.Module) -> str | None:
    """Why bn -> conv is not exact for this consumer, or None when it is."""
    if isinstance(conv, nn.Linear):
        return None
    if conv.padding_mode != "zeros":  # reflect/replicate/circular pad with BN-transformed values: exact
        return None
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid" or all(k == 1 for k in conv.kernel_size):
            return None
    elif all(p == 0 for p in pad):
        return None
    return f"followed by zero-padded {type(conv).__name__} (padding={pad}): the padded zeros would not carry the BN shift"


@dataclass
class _Site:
    """A neighbour of a BN in the dataflow: a module call, a function call, the input or the output."""
    label: str
    name: str | None = None
    module: nn.Module | None = None
    exclusive: bool = True  # for a producer: its output feeds only this BN
    calls: int = 1


_METADATA = {"shape", "dtype", "device", "ndim", "size", "dim"}


def _data_users(node: fx.Node) -> list[fx.Node]:
    """Users that read the node's values (reading .shape / .size() / .dim() does not change with a fold)."""
    return [u for u in node.users if not (u.op in ("call_function", "call_method") and
                                          getattr(u.target, "__name__", u.target) in ("getattr", *_METADATA) and
                                          (u.op == "call_method" or (len(u.args) > 1 and u.args[1] in _METADATA)))]


class _Tracer(fx.Tracer):
    """Keep every BatchNorm flavour (incl. archkit's) and every conv/linear subclass as one call_module node,
    so the guard can say why a subclass is not folded into."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_batchnorm(m) or isinstance(m, _FOLD_AFTER) or super().is_leaf_module(m, module_qualified_name)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _describe(module: nn.Module, name: str) -> str:
    return f"{type(module).__name__} '{name}'"


@dataclass
class _Edit:
    """One fold: BN `name` absorbed by `layers` (each as 'producer' or 'consumer'); undo restores everything."""
    name: str
    bn: nn.Module
    layers: list[tuple[nn.Module, str]]
    scale: torch.Tensor
    shift: torch.Tensor
    change: object = None
    saved: list | None = None

    def apply(self, model: nn.Module) -> None:
        self.saved = [(layer, layer.weight.detach().clone(),
                       None if layer.bias is None else layer.bias.detach().clone()) for layer, _ in self.layers]
        for layer, role in self.layers:
            (fold_into_producer if role == "producer" else fold_into_consumer)(layer, self.scale, self.shift)
        set_child(model, self.name, identity_for(self.bn))

    def undo(self, model: nn.Module) -> None:
        with torch.no_grad():
            for layer, weight, bias in reversed(self.saved or []):
                layer.weight.copy_(weight)
                if bias is None:
                    layer.bias = None
                else:
                    layer.bias.copy_(bias)
        set_child(model, self.name, self.bn)


@torch.no_grad()
def _local_error(layer: nn.Module, role: str, scale: torch.Tensor, shift: torch.Tensor, fold: object) -> float:
    """Apply `fold` and return the relative error of the folded layer vs BN + layer on a random input."""
    x = probe_input(layer, generator=torch.Generator().manual_seed(2))
    view = (1, -1) + (1,) * (x.dim() - 2)
    s, t = scale.to(x.dtype), shift.to(x.dtype)
    if role == "producer":
        y = layer(x)
        ref = y * s.view((1, -1) + (1,) * (y.dim() - 2)) + t.view((1, -1) + (1,) * (y.dim() - 2))
    else:
        ref = layer(x * s.view(view) + t.view(view))
    fold()
    return relative_error(ref, layer(x))


class _Fuser:
    def __init__(self, model: nn.Module, report: SurgeryReport, bn_ranks: dict[str, set[int]] | None = None) -> None:
        self.model = model
        self.report = report
        self.owners = parameter_owners(model)
        self.bn_ranks = bn_ranks  # BN name -> input ranks seen on a trusted example input (None: unknown)
        self.edits: list[_Edit] = []
        self.layer_reasons: dict[int, str | None] = {}
        self.names: dict[int, list[str]] = defaultdict(list)
        for name, m in model.named_modules(remove_duplicate=False):
            self.names[id(m)].append(name)
        self.bns = [(n, m) for n, m in model.named_modules() if is_batchnorm(m)]
        self.seen: set[int] = set()
        self.opaque: dict[str, str] = {}  # untraceable non-Sequential scopes -> trace error

    # -- walking ---------------------------------------------------------------------------------
    def visit(self, module: nn.Module, prefix: str) -> None:
        if is_batchnorm(module) or not any(True for _ in module.children()):
            return
        try:
            graph = _Tracer().trace(module)
        except Exception as e:  # noqa: BLE001 - any trace failure means: look one level down
            error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if type(module).forward is nn.Sequential.forward:
                self.visit_chain(module, prefix)
            else:
                self.opaque[prefix] = error
                for name, child in module.named_children():
                    self.visit(child, _join(prefix, name))
            return
        self.visit_graph(module, prefix, graph)

    def visit_graph(self, root: nn.Module, prefix: str, graph: fx.Graph) -> None:
        modules = dict(root.named_modules())
        calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
        scope = f"'{prefix}'" if prefix else "the model"

        def site(node: object) -> _Site:
            if not isinstance(node, fx.Node):
                return _Site(f"a constant ({node!r})")
            exclusive = len(_data_users(node)) == 1
            if node.op == "call_module":
                m, full = modules[node.target], _join(prefix, node.target)
                return _Site(_describe(m, full), full, m, exclusive, calls[node.target])
            if node.op == "placeholder":
                return _Site(f"the input of {scope}", exclusive=exclusive)
            if node.op == "output":
                return _Site(f"the output of {scope}")
            target = getattr(node.target, "__name__", str(node.target))
            kind = "a concat (torch.cat)" if target in ("cat", "concat", "concatenate") else f"{node.op} {target}"
            return _Site(kind, exclusive=exclusive)

        uses: dict[str, list[tuple[_Site, list[_Site]]]] = defaultdict(list)
        for node in graph.nodes:
            if node.op == "call_function" and node.target in _FUNCTIONAL_BN:
                self.report.add(_join(prefix, node.name), "skipped", reason="BN used functionally (F.batch_norm): "
                                "there is no module to fold; use an nn.BatchNorm module instead")
            if node.op != "call_module" or not is_batchnorm(modules[node.target]):
                continue
            producer = site(node.args[0]) if node.args else _Site("nothing")
            uses[node.target].append((producer, [site(u) for u in _data_users(node)]))
        for target, sites in uses.items():
            name, bn = _join(prefix, target), modules[target]
            if len(sites) == 1:
                self.decide(name, bn, 1, *sites[0])
            else:
                self.decide_shared(name, bn, [producer for producer, _ in sites])

    def visit_chain(self, seq: nn.Module, prefix: str) -> None:
        items: list[tuple[str, nn.Module]] = []

        def flatten(m: nn.Module, p: str) -> None:
            for name, child in m.named_children():
                full = _join(p, name)
                if type(child).forward is nn.Sequential.forward:
                    flatten(child, full)
                else:
                    items.append((full, child))
                    self.visit(child, full)

        flatten(seq, prefix)
        for i, (name, m) in enumerate(items):
            if not is_batchnorm(m):
                continue
            producer = (_Site(_describe(items[i - 1][1], items[i - 1][0]), *items[i - 1]) if i > 0
                        else _Site(f"the input of nn.Sequential '{prefix}'"))
            consumers = ([_Site(_describe(items[i + 1][1], items[i + 1][0]), *items[i + 1])] if i + 1 < len(items)
                         else [_Site(f"the output of nn.Sequential '{prefix}' (untraceable, consumers unknown)")])
            self.decide(name, m, 1, producer, consumers)

    # -- deciding and folding -------------------------------------------------------------------------
    def shared(self, module: nn.Module) -> bool:
        return len(self.names[id(module)]) > 1

    def decide(self, name: str, bn: nn.Module, calls: int, producer: _Site, consumers: list[_Site]) -> None:
        if id(bn) in self.seen:  # a shared BN is reported once, at its first call
            return
        self.seen.add(id(bn))
        affine = bn_scale_shift(bn)
        if isinstance(affine, str):
            self.report.add(name, "skipped", reason=affine)
            return
        if calls > 1 or self.shared(bn):
            self.report.add(name, "skipped", reason=f"the BN module is shared (called {calls}x, registered as "
                            f"{self.names[id(bn)]}): folding it into one layer would change the others")
            return
        scale, shift = affine
        probe = bn_reason(bn)
        if probe is not None:
            self.report.add(name, "skipped", reason=probe)
            return
        forward = self.producer_reason(name, bn, producer)
        if forward is None:
            self.fold(name, bn, [(producer.module, "producer")], scale, shift, f"{producer.name} <- {name}",
                      f"{type(producer.module).__name__}->BN")
            return
        backward = self.consumer_reason(name, bn, consumers)
        if backward is None:
            consumer = consumers[0]
            self.fold(name, bn, [(consumer.module, "consumer")], scale, shift, f"{name} -> {consumer.name}",
                      f"BN->{type(consumer.module).__name__}")
            return
        self.report.add(name, "skipped", reason=f"{forward}; {backward}")

    def fold(self, name: str, bn: nn.Module, layers: list[tuple[nn.Module, str]], scale: torch.Tensor,
             shift: torch.Tensor, detail: str, pattern: str) -> None:
        """Fold BN `name` into `layers`, checking each folded layer on a random input; undo on a mismatch."""
        edit = _Edit(name, bn, layers, scale, shift)
        edit.saved = [(layer, layer.weight.detach().clone(),
                       None if layer.bias is None else layer.bias.detach().clone()) for layer, _ in layers]
        worst = 0.0
        for layer, role in layers:
            fold = (fold_into_producer if role == "producer" else fold_into_consumer)
            worst = max(worst, _local_error(layer, role, scale, shift, lambda: fold(layer, scale, shift)))
        tol = exact_tolerance(layers[0][0].weight.dtype)
        if not worst <= tol:
            edit.undo(self.model)
            self.report.add(name, "skipped", reason=f"the folded layer did not match BN + layer on a random input "
                            f"(rel error {worst:.3g} > {tol:g}); left unfolded")
            return
        set_child(self.model, name, identity_for(bn))
        edit.change = self.report.add(name, "folded", detail=detail, pattern=pattern)
        self.edits.append(edit)

    def decide_shared(self, name: str, bn: nn.Module, producers: list[_Site]) -> None:
        """A BN module called at several sites folds only if every call's producer can absorb it."""
        self.seen.add(id(bn))
        affine = bn_scale_shift(bn)
        reasons = [affine] if isinstance(affine, str) else [r for r in [bn_reason(bn)] if r] + [
            r for r in (self.producer_reason(name, bn, p) for p in producers) if r]
        if len({id(p.module) for p in producers}) < len(producers):
            reasons.append("several calls share one producer module")
        if self.shared(bn):
            reasons.append(f"the BN module is also registered as {self.names[id(bn)]}")
        if reasons:
            self.report.add(name, "skipped", reason=f"the BN module is called {len(producers)}x and not every call "
                            f"can be folded: {reasons[0]}")
            return
        scale, shift = affine
        self.fold(name, bn, [(p.module, "producer") for p in producers], scale, shift,
                  ", ".join(f"{p.name} <- {name}" for p in producers),
                  f"{len(producers)}x {type(producers[0].module).__name__}->BN")

    def layer_reason(self, site: _Site) -> str | None:
        """The guard rule for one conv/linear (cached): may its weight be rewritten?"""
        key = id(site.module)
        if key not in self.layer_reasons:
            reason = weight_reason(site.name, site.module, self.model, self.owners)
            self.layer_reasons[key] = None if reason is None else f"{site.label}: {reason}"
        return self.layer_reasons[key]

    def linear_reason(self, name: str, layer: nn.Module) -> str | None:
        """Linear<->BN folds only when BN normalizes the Linear's feature dim, i.e. BN sees a 2-D (N, F) input."""
        if not isinstance(layer, nn.Linear):
            return None
        ranks = None if self.bn_ranks is None else self.bn_ranks.get(name)
        if not ranks:
            return ("Linear<->BN: the BN's input rank is unknown (pass example_inputs); the fold is exact only "
                    "when BN normalizes the Linear's feature dim, i.e. a 2-D (N, features) input")
        if ranks != {2}:
            return (f"Linear<->BN on a {'/'.join(map(str, sorted(ranks)))}-D input: BatchNorm1d normalizes dim 1 while "
                    "the Linear acts on the last dim, so they do not share a feature dim")
        return None

    def producer_reason(self, name: str, bn: nn.Module, p: _Site) -> str | None:
        if not isinstance(p.module, _FOLD_AFTER):
            return f"preceded by {p.label}, not a conv/linear"
        if not p.exclusive:
            return f"output of {p.label} is also used elsewhere"
        if p.calls > 1 or self.shared(p.module):
            return f"{p.label} is shared (called or registered more than once)"
        if _out_channels(p.module) != bn.num_features:
            return f"{p.label} has {_out_channels(p.module)} outputs but the BN has {bn.num_features} features"
        return self.layer_reason(p) or self.linear_reason(name, p.module)

    def consumer_reason(self, name: str, bn: nn.Module, consumers: list[_Site]) -> str | None:
        if len(consumers) != 1:
            return f"its output is shared by {len(consumers)} consumers" if consumers else "its output is unused"
        c = consumers[0]
        if isinstance(c.module, _CONV_T):
            return f"followed by {c.label}: a transposed conv sums a varying number of inputs per output pixel"
        if not isinstance(c.module, _FOLD_BEFORE):
            return f"followed by {c.label}, not a conv/linear"
        if c.calls > 1 or self.shared(c.module):
            return f"{c.label} is shared (called or registered more than once)"
        if _in_channels(c.module) != bn.num_features:
            return f"{c.label} has {_in_channels(c.module)} inputs but the BN has {bn.num_features} features"
        return _zero_padding_reason(c.module) or self.layer_reason(c) or self.linear_reason(name, c.module)

    def verify(self, inputs: tuple, reference: torch.Tensor, tolerance: float) -> float:
        """Whole-model check; when it fails, redo the folds one at a time and undo each one that breaks it."""
        err, failure = model_error(self.model, inputs, reference)
        if failure is None and err <= tolerance:
            return err
        for edit in reversed(self.edits):
            edit.undo(self.model)
        kept = []
        for edit in self.edits:
            edit.apply(self.model)
            err, failure = model_error(self.model, inputs, reference)
            if failure is None and err <= tolerance:
                kept.append(edit)
                continue
            edit.undo(self.model)
            edit.change.action = "skipped"
            edit.change.reason = (f"folding broke the model's forward ({failure}); undone" if failure else
                                  f"the folded model did not match the original on the example input "
                                  f"(rel error {err:.3g} > {tolerance:g}); undone")
            edit.change.detail = ""
        self.edits = kept
        return model_error(self.model, inputs, reference)[0]

    def finish(self) -> None:
        for name, bn in self.bns:
            if id(bn) in self.seen:
                continue
            parent = name.rpartition(".")[0]
            if parent in self.opaque:
                reason = f"inside '{parent or type(self.model).__name__}', whose forward could not be traced " \
                         f"({self.opaque[parent]}): how the BN is used is unknown"
            else:
                reason = "never called in the traced forward"
            self.report.add(name, "skipped", reason=reason)
            self.seen.add(id(bn))


def _bn_input_ranks(model: nn.Module, inputs: tuple) -> dict[str, set[int]]:
    """BN name -> ranks of the inputs it sees in one eval-mode forward pass."""
    ranks: dict[str, set[int]] = defaultdict(set)
    hooks = []
    for name, m in model.named_modules():
        if is_batchnorm(m):
            hooks.append(m.register_forward_pre_hook(
                lambda _m, args, name=name: ranks[name].add(args[0].dim()) if args and hasattr(args[0], "dim") else None))
    try:
        model_outputs(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    return dict(ranks)


def fuse_bn(model: nn.Module, inplace: bool = False, example_inputs: object = None) -> tuple[nn.Module, SurgeryReport]:
    """Fold every eval-mode BatchNorm into its adjacent conv/linear; returns (model, report of folds and skips).

    Exact up to float32 rounding. Patterns: Conv/ConvTranspose/Linear -> BN, and BN -> Conv/Linear when the
    conv is the BN's only consumer and pads with no zeros. Only layers whose forward is a plain conv/linear
    of their own weight are touched (see `surgery.guard`). Every fold is checked on a random input of the
    layer, and the whole model on `example_inputs` (built for archkit models when not given, else guessed
    from the first layer); a fold that fails the check is undone and reported as skipped. Linear<->BN pairs
    need example inputs given or built (to see that BN normalizes the Linear's feature dim).
    Everything else is left alone with a reason.
    """
    check_module(model, "model", inplace, "fuse_bn")
    report = SurgeryReport("fuse_bn")
    if not inplace:
        model = copy.deepcopy(model)
    if is_batchnorm(model):
        report.add("", "skipped", reason="the model is a lone BatchNorm: there is no adjacent layer to fold into")
        return model, report
    source, inputs = _example_inputs(model, example_inputs)
    reference = ranks = None
    if inputs is not None:
        try:
            reference = model_outputs(model, inputs)
            ranks = _bn_input_ranks(model, inputs) if source != "guessed" else None
        except Exception as e:  # noqa: BLE001 - bad example inputs: say so, fold without the whole-model check
            if source == "given":
                raise ValueError(f"fuse_bn: the model's forward fails on example_inputs ({type(e).__name__}: {e})") from e
            inputs = None
    if reference is not None and not torch.isfinite(reference).all():
        report.notes.append("the model's output on the example inputs is not finite: it cannot verify a fold")
        inputs = reference = None
    fuser = _Fuser(model, report, ranks)
    fuser.visit(model, "")  # also when there is no BN module: functional batch_norm calls get reported
    fuser.finish()
    for scope, error in fuser.opaque.items():
        report.notes.append(f"could not trace '{scope or type(model).__name__}' ({error}); analysed its children separately")
    if fuser.bns or reference is not None:
        if inputs is not None and reference is not None:
            dtype = next((p.dtype for p in model.parameters() if p.dtype.is_floating_point), torch.float32)
            tol = exact_tolerance(dtype)
            err = fuser.verify(inputs, reference, tol)
            report.verification = f"whole model checked on {source} example inputs: rel error {err:.3g} (limit {tol:g})"
            report.model_rel_error = err
        else:
            report.verification = ("each fold checked on a random input of its layer; the whole model NOT verified "
                                   "(no example input could be built: pass example_inputs)")
        report.notes.append(report.verification)
    if fuser.bns:
        report.notes.append(f"{len(report.by_action('folded'))} of {len(fuser.bns)} BatchNorm layers folded")
    else:
        report.notes.insert(0, "no BatchNorm layers found: model returned unchanged")
    return model, report


def _example_inputs(model: nn.Module, example_inputs: object) -> tuple[str, tuple | None]:
    """("given" | "built" | "guessed", inputs) or ("none", None)."""
    if example_inputs is not None:
        return "given", as_args(example_inputs)
    from ..models.registry import example_inputs_for

    built = example_inputs_for(model)
    if built is not None:
        return "built", built
    guessed = guess_inputs(model)
    return ("guessed", guessed) if guessed is not None else ("none", None)
