"""fuse_bn: fold inference-mode BatchNorm into the adjacent conv / transposed conv / linear, exactly.

BatchNorm at inference is a per-channel affine map y = x * scale + shift, so it can be absorbed by
the layer that produces its input (conv -> bn) or, when the padding does not get in the way, by the
layer that consumes its output (bn -> conv). The graph is found with torch.fx; modules whose forward
cannot be traced are analysed child by child, and nn.Sequential containers by walking their chain.
The model keeps its own classes and module names: folded BNs become nn.Identity in place.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter, defaultdict

import torch
import torch.nn.functional as F
from torch import fx, nn

from . import bnfold
from .bngraph import BNTracer, Edit, Site, data_users, describe, fold_layer, join_name
from .edit import check_module, is_batchnorm, set_child
from .guard import (
    bn_reason,
    choose_example_inputs,
    exact_tolerance,
    identity_for,
    model_error,
    parameter_owners,
    reference_run,
    weight_reason,
)
from .report import SurgeryReport

_FUNCTIONAL_BN = {F.batch_norm, torch.batch_norm, torch.native_batch_norm}


class _Fuser:
    def __init__(self, model: nn.Module, report: SurgeryReport, bn_ranks: dict[str, set[int]] | None = None) -> None:
        self.model = model
        self.report = report
        self.owners = parameter_owners(model)
        self.bn_ranks = bn_ranks  # BN name -> input ranks seen on a trusted example input (None: unknown)
        self.edits: list[Edit] = []
        self.layer_reasons: dict[int, str | None] = {}
        self.names: dict[int, list[str]] = defaultdict(list)
        for name, m in model.named_modules(remove_duplicate=False):
            self.names[id(m)].append(name)
        self.bns = [(n, m) for n, m in model.named_modules() if is_batchnorm(m)]
        self.seen: set[int] = set()
        self.opaque: dict[str, str] = {}  # untraceable non-Sequential scopes -> trace error
        self.rank_decided: set[str] = set()  # BNs whose Linear<->BN fold rests on the example input's rank

    # -- walking ---------------------------------------------------------------------------------
    def visit(self, module: nn.Module, prefix: str) -> None:
        if is_batchnorm(module) or not any(True for _ in module.children()):
            return
        try:
            graph = BNTracer().trace(module)
        except Exception as e:
            error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if type(module).forward is nn.Sequential.forward:
                self.visit_chain(module, prefix)
            else:
                self.opaque[prefix] = error
                for name, child in module.named_children():
                    self.visit(child, join_name(prefix, name))
            return
        self.visit_graph(module, prefix, graph)

    def visit_graph(self, root: nn.Module, prefix: str, graph: fx.Graph) -> None:
        modules = dict(root.named_modules())
        calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
        scope = f"'{prefix}'" if prefix else "the model"

        def site(node: object) -> Site:
            if not isinstance(node, fx.Node):
                return Site(f"a constant ({node!r})")
            exclusive = len(data_users(node)) == 1
            if node.op == "call_module":
                m, full = modules[node.target], join_name(prefix, str(node.target))
                return Site(describe(m, full), full, m, exclusive, calls[node.target])
            if node.op == "placeholder":
                return Site(f"the input of {scope}", exclusive=exclusive)
            if node.op == "output":
                return Site(f"the output of {scope}")
            target = getattr(node.target, "__name__", str(node.target))
            kind = "a concat (torch.cat)" if target in ("cat", "concat", "concatenate") else f"{node.op} {target}"
            return Site(kind, exclusive=exclusive)

        uses: dict[str, list[tuple[Site, list[Site]]]] = defaultdict(list)
        bns: dict[str, bnfold.BatchNormLike] = {}
        for node in graph.nodes:
            if node.op == "call_function" and node.target in _FUNCTIONAL_BN:
                self.report.add(
                    join_name(prefix, node.name),
                    "skipped",
                    reason="BN used functionally (F.batch_norm): "
                    "there is no module to fold; use an nn.BatchNorm module instead",
                )
            bn = modules[node.target] if node.op == "call_module" else None
            if bn is None or not is_batchnorm(bn):
                continue
            bns[node.target] = bn
            producer = site(node.args[0]) if node.args else Site("nothing")
            uses[node.target].append((producer, [site(u) for u in data_users(node)]))
        for target, sites in uses.items():
            name, bn = join_name(prefix, target), bns[target]
            if len(sites) == 1:
                self.decide(name, bn, 1, *sites[0])
            else:
                self.decide_shared(name, bn, [producer for producer, _ in sites])

    def visit_chain(self, seq: nn.Module, prefix: str) -> None:
        items: list[tuple[str, nn.Module]] = []

        def flatten(m: nn.Module, p: str) -> None:
            for name, child in m.named_children():
                full = join_name(p, name)
                if type(child).forward is nn.Sequential.forward:
                    flatten(child, full)
                else:
                    items.append((full, child))
                    self.visit(child, full)

        flatten(seq, prefix)
        for i, (name, m) in enumerate(items):
            if not is_batchnorm(m):
                continue
            producer = (
                Site(describe(items[i - 1][1], items[i - 1][0]), *items[i - 1])
                if i > 0
                else Site(f"the input of nn.Sequential '{prefix}'")
            )
            consumers = (
                [Site(describe(items[i + 1][1], items[i + 1][0]), *items[i + 1])]
                if i + 1 < len(items)
                else [Site(f"the output of nn.Sequential '{prefix}' (untraceable, consumers unknown)")]
            )
            self.decide(name, m, 1, producer, consumers)

    # -- deciding and folding -------------------------------------------------------------------------
    def shared(self, module: nn.Module) -> bool:
        return len(self.names[id(module)]) > 1

    def decide(self, name: str, bn: bnfold.BatchNormLike, calls: int, producer: Site, consumers: list[Site]) -> None:
        if id(bn) in self.seen:  # a shared BN is reported once, at its first call
            return
        self.seen.add(id(bn))
        affine = bnfold.bn_scale_shift(bn)
        if isinstance(affine, str):
            self.report.add(name, "skipped", reason=affine)
            return
        if calls > 1 or self.shared(bn):
            self.report.add(
                name,
                "skipped",
                reason=f"the BN module is shared (called {calls}x, registered as "
                f"{self.names[id(bn)]}): folding it into one layer would change the others",
            )
            return
        scale, shift = affine
        probe = bn_reason(bn)
        if probe is not None:
            self.report.add(name, "skipped", reason=probe)
            return
        forward = self.producer_reason(name, bn, producer)
        if forward is None:
            self.fold(
                name,
                bn,
                [(fold_layer(producer), "producer")],
                scale,
                shift,
                f"{producer.name} <- {name}",
                f"{type(producer.module).__name__}->BN",
            )
            return
        backward = self.consumer_reason(name, bn, consumers)
        if backward is None:
            consumer = consumers[0]
            self.fold(
                name,
                bn,
                [(fold_layer(consumer), "consumer")],
                scale,
                shift,
                f"{name} -> {consumer.name}",
                f"BN->{type(consumer.module).__name__}",
            )
            return
        self.report.add(name, "skipped", reason=f"{forward}; {backward}")

    def fold(
        self,
        name: str,
        bn: bnfold.BatchNormLike,
        layers: list[tuple[bnfold.FoldLayer, str]],
        scale: torch.Tensor,
        shift: torch.Tensor,
        detail: str,
        pattern: str,
    ) -> None:
        """Fold BN `name` into `layers`, checking each folded layer on a random input; undo on a mismatch."""
        edit = Edit(name, bn, layers, scale, shift)
        edit.saved = [
            (layer, layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone())
            for layer, _ in layers
        ]
        worst = 0.0
        for layer, role in layers:
            fold = bnfold.fold_into_producer if role == "producer" else bnfold.fold_into_consumer
            worst = max(
                worst,
                bnfold.local_error(layer, role, scale, shift, functools.partial(fold, layer, scale, shift)),
            )
        tol = exact_tolerance(layers[0][0].weight.dtype)
        if not worst <= tol:
            edit.undo(self.model)
            self.report.add(
                name,
                "skipped",
                reason=f"the folded layer did not match BN + layer on a random input "
                f"(rel error {worst:.3g} > {tol:g}); left unfolded",
            )
            return
        set_child(self.model, name, identity_for(bn))
        edit.change = self.report.add(name, "folded", detail=detail, pattern=pattern)
        self.edits.append(edit)

    def decide_shared(self, name: str, bn: bnfold.BatchNormLike, producers: list[Site]) -> None:
        """A BN module called at several sites folds only if every call's producer can absorb it."""
        self.seen.add(id(bn))
        affine = bnfold.bn_scale_shift(bn)
        reasons = (
            [affine]
            if isinstance(affine, str)
            else [r for r in [bn_reason(bn)] if r]
            + [r for r in (self.producer_reason(name, bn, p) for p in producers) if r]
        )
        if len({id(p.module) for p in producers}) < len(producers):
            reasons.append("several calls share one producer module")
        if self.shared(bn):
            reasons.append(f"the BN module is also registered as {self.names[id(bn)]}")
        if reasons or isinstance(affine, str):  # a str affine is the first reason
            self.report.add(
                name,
                "skipped",
                reason=f"the BN module is called {len(producers)}x and not every call can be folded: {reasons[0]}",
            )
            return
        scale, shift = affine
        self.fold(
            name,
            bn,
            [(fold_layer(p), "producer") for p in producers],
            scale,
            shift,
            ", ".join(f"{p.name} <- {name}" for p in producers),
            f"{len(producers)}x {type(producers[0].module).__name__}->BN",
        )

    def layer_reason(self, site: Site, layer: bnfold.FoldLayer) -> str | None:
        """The guard rule for one conv/linear (the site's module, cached): may its weight be rewritten?"""
        key = id(layer)
        if key not in self.layer_reasons:
            reason = weight_reason(site.name or "", layer, self.model, self.owners)  # a module site has a name
            self.layer_reasons[key] = None if reason is None else f"{site.label}: {reason}"
        return self.layer_reasons[key]

    def linear_reason(self, name: str, layer: nn.Module) -> str | None:
        reason = bnfold.linear_bn_reason(layer, None if self.bn_ranks is None else self.bn_ranks.get(name))
        if reason is None and isinstance(layer, nn.Linear):
            self.rank_decided.add(name)
        return reason

    def producer_reason(self, name: str, bn: nn.Module, p: Site) -> str | None:
        if not isinstance(p.module, bnfold.FOLD_AFTER):
            return f"preceded by {p.label}, not a conv/linear"
        if not p.exclusive:
            return f"output of {p.label} is also used elsewhere"
        if p.calls > 1 or self.shared(p.module):
            return f"{p.label} is shared (called or registered more than once)"
        if bnfold.out_channels(p.module) != bn.num_features:
            return f"{p.label} has {bnfold.out_channels(p.module)} outputs but the BN has {bn.num_features} features"
        return self.layer_reason(p, p.module) or self.linear_reason(name, p.module)

    def consumer_reason(self, name: str, bn: nn.Module, consumers: list[Site]) -> str | None:
        if len(consumers) != 1:
            return f"its output is shared by {len(consumers)} consumers" if consumers else "its output is unused"
        c = consumers[0]
        if isinstance(c.module, bnfold.CONV_T):
            return f"followed by {c.label}: a transposed conv sums a varying number of inputs per output pixel"
        if not isinstance(c.module, bnfold.FOLD_BEFORE):
            return f"followed by {c.label}, not a conv/linear"
        if c.calls > 1 or self.shared(c.module):
            return f"{c.label} is shared (called or registered more than once)"
        if bnfold.in_channels(c.module) != bn.num_features:
            return f"{c.label} has {bnfold.in_channels(c.module)} inputs but the BN has {bn.num_features} features"
        return (
            bnfold.zero_padding_reason(c.module) or self.layer_reason(c, c.module) or self.linear_reason(name, c.module)
        )

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
            if edit.change is not None:  # set when the fold was made
                edit.change.action = "skipped"
                edit.change.reason = (
                    f"folding broke the model's forward ({failure}); undone"
                    if failure
                    else f"the folded model did not match the original on the example input "
                    f"(rel error {err:.3g} > {tolerance:g}); undone"
                )
                edit.change.detail = ""
        self.edits = kept
        return model_error(self.model, inputs, reference)[0]

    def finish(self) -> None:
        for name, bn in self.bns:
            if id(bn) in self.seen:
                continue
            parent = name.rpartition(".")[0]
            if parent in self.opaque:
                reason = (
                    f"inside '{parent or type(self.model).__name__}', whose forward could not be traced "
                    f"({self.opaque[parent]}): how the BN is used is unknown"
                )
            else:
                reason = "never called in the traced forward"
            self.report.add(name, "skipped", reason=reason)
            self.seen.add(id(bn))


def fuse_bn(model: nn.Module, inplace: bool = False, example_inputs: object = None) -> tuple[nn.Module, SurgeryReport]:
    """Fold every eval-mode BatchNorm into its adjacent conv/linear; returns (model, report of folds and skips).

    Exact up to float32 rounding. Patterns: Conv/ConvTranspose/Linear -> BN, and BN -> Conv/Linear when the
    conv is the BN's only consumer and pads with no zeros. Only layers whose forward is a plain conv/linear
    of their own weight are touched (see `surgery.guard`). Every fold is checked on a random input of the
    layer, and the whole model on `example_inputs` (built for archkit models when not given, else guessed
    from the first layer); a fold that fails the check is undone and reported as skipped. Linear<->BN pairs
    fold when the BN sees a 2-D (N, features) input on those example inputs (given, built or guessed).
    Everything else is left alone with a reason.
    """
    check_module(model, "model", inplace, "fuse_bn")
    report = SurgeryReport("fuse_bn")
    if not inplace:
        model = copy.deepcopy(model)
    if is_batchnorm(model):
        report.add("", "skipped", reason="the model is a lone BatchNorm: there is no adjacent layer to fold into")
        return model, report
    source, inputs = choose_example_inputs(model, example_inputs)
    inputs, reference, ranks = reference_run(model, source, inputs, report.notes)
    fuser = _Fuser(model, report, ranks)
    fuser.visit(model, "")  # also when there is no BN module: functional batch_norm calls get reported
    fuser.finish()
    if report.skipped:  # explains the skips; when every BN folded, how the model was walked is no news
        for scope, error in fuser.opaque.items():
            if isinstance(model.get_submodule(scope), nn.ModuleList | nn.ModuleDict):
                continue  # containers have no forward of their own: their children are always analysed one by one
            report.notes.append(
                f"'{scope or type(model).__name__}' was analysed child by child: torch.fx cannot trace its "
                f"forward as a whole ({error})"
            )
    if fuser.bns or reference is not None:
        if inputs is not None and reference is not None:
            dtype = next((p.dtype for p in model.parameters() if p.dtype.is_floating_point), torch.float32)
            tol = exact_tolerance(dtype)
            err = fuser.verify(inputs, reference, tol)
            report.verification = f"whole model checked on {source} example inputs: rel error {err:.3g} (limit {tol:g})"
            report.model_rel_error = err
        else:
            report.verification = (
                "each fold checked on a random input of its layer; the whole model NOT verified "
                "(no example input could be built: pass example_inputs)"
            )
        report.notes.append(report.verification)
    guessed = sorted(fuser.rank_decided & {c.name for c in report.by_action("folded")}) if source == "guessed" else []
    if guessed:  # the same module fed (N, C, L) would need the opposite choice: say which input decided it
        report.notes.append(bnfold.guessed_rank_note(guessed))
    if fuser.bns:
        report.notes.append(f"{len(report.by_action('folded'))} of {len(fuser.bns)} BatchNorm layers folded")
    else:
        report.notes.insert(0, "no BatchNorm layers found: model returned unchanged")
    return model, report
