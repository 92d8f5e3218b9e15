"""A safe arithmetic-expression parser: "sin(x) + y" -> a function of named numpy/torch columns.

The text is parsed with `ast` and checked against a whitelist (numbers, variables, + - * / **,
unary +/-, a fixed set of math functions and the constants pi and e). Evaluation walks the checked
tree itself: nothing is ever handed to eval/exec/compile, so no user text can run code.

Size bounds keep hostile text from overflowing or exhausting the interpreter: at most MAX_LENGTH
characters, MAX_DEPTH levels of nesting (checked without recursion), MAX_LITERAL_DIGITS characters
per number, and a constant exponent of at most MAX_EXPONENT in size. Constant sub-expressions are
evaluated once at parse time and must be finite real numbers (`1/0`, `9**9**9` and `(-8)**0.5` are
refused). Each violation is a ValueError naming the piece.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

# name -> (numpy version, torch version); both take and return arrays of the same shape.
FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "sin": (np.sin, torch.sin),
    "cos": (np.cos, torch.cos),
    "tan": (np.tan, torch.tan),
    "arcsin": (np.arcsin, torch.asin),
    "arccos": (np.arccos, torch.acos),
    "arctan": (np.arctan, torch.atan),
    "sinh": (np.sinh, torch.sinh),
    "cosh": (np.cosh, torch.cosh),
    "tanh": (np.tanh, torch.tanh),
    "exp": (np.exp, torch.exp),
    "log": (np.log, torch.log),
    "log10": (np.log10, torch.log10),
    "sqrt": (np.sqrt, torch.sqrt),
    "abs": (np.abs, torch.abs),
    "sign": (np.sign, torch.sign),
    "floor": (np.floor, torch.floor),
    "ceil": (np.ceil, torch.ceil),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a}
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.USub: "-", ast.UAdd: "+"}
MAX_LENGTH = 2000
MAX_DEPTH = 100  # nested operators/calls; deeper trees would exhaust Python's recursion limit
MAX_LITERAL_DIGITS = 40  # characters of one numeric literal (a double holds ~17 significant digits)
MAX_EXPONENT = 100  # |b| in a ** b when b is a constant; beyond it doubles overflow or underflow


@dataclass
class Expression:
    """A checked expression tree: call it with columns by name, e.g. `expr(x=arr, y=arr)` or `expr({"x": arr})`."""

    text: str
    tree: ast.expr = field(repr=False)
    variables: list[str]  # in order of first appearance

    def __call__(self, columns: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        env = {**(columns or {}), **kwargs}
        missing = [v for v in self.variables if v not in env]
        if missing:
            raise ValueError(f"expression {self.text!r}: no values given for {missing}; got {sorted(env)}")
        use_torch = any(isinstance(env[v], torch.Tensor) for v in self.variables)
        out = _evaluate(self.tree, env, use_torch)
        # A constant expression still returns one value per row.
        ref = env[self.variables[0]] if self.variables else None
        if ref is not None and getattr(out, "ndim", 0) == 0:
            out = torch.full_like(ref, float(out)) if use_torch else np.full(np.shape(ref), float(out))
        return out


def parse_expression(text: str, allowed_variables: list[str] | None = None) -> Expression:
    """Parse and check `text`; raises ValueError naming the offending piece for anything not whitelisted."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expression: expected a non-empty string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression: longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"expression {text!r}: syntax error at column {e.offset}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"expression {text!r}: nested too deeply to parse") from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise ValueError(f"expression {text!r}: nests {depth} levels deep; at most {MAX_DEPTH} are allowed")
    variables: list[str] = []
    _check(tree.body, text, variables)
    if allowed_variables is not None:
        unknown = [v for v in variables if v not in allowed_variables]
        if unknown:
            raise ValueError(
                f"expression {text!r}: unknown variables {unknown}; expected some of {list(allowed_variables)}"
            )
    return Expression(text=text.strip(), tree=tree.body, variables=variables)


def _piece(node: ast.AST, text: str) -> str:
    seg = ast.get_source_segment(text.strip(), node)
    return repr(seg) if seg else type(node).__name__


def _depth(root: ast.AST) -> int:
    """Depth of the tree, walked with an explicit stack (a recursive walk is what deep input breaks)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        stack.extend(
            (child, d + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, (ast.operator, ast.unaryop, ast.expr_context))
        )
    return deepest


def _constant(value: Any, node: ast.AST, text: str) -> float:
    """A folded constant: a finite real number, or a ValueError naming the sub-expression."""
    if isinstance(value, complex) or not np.isfinite(value):
        raise ValueError(f"expression {text!r}: {_piece(node, text)} is {value!r}, not a finite real number")
    return float(value)


def _fold(node: ast.AST, text: str, compute: Callable[[], Any]) -> float:
    try:
        with np.errstate(all="raise"):
            return _constant(compute(), node, text)
    except (OverflowError, ZeroDivisionError, FloatingPointError) as e:
        raise ValueError(f"expression {text!r}: {_piece(node, text)} cannot be evaluated ({e})") from None


def _check(node: ast.AST, text: str, variables: list[str]) -> float | None:
    """Check `node` against the whitelist; returns its value when it is constant (else None)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"expression {text!r}: only numbers are allowed as literals, got {_piece(node, text)}")
        literal = ast.get_source_segment(text.strip(), node) or repr(node.value)
        if len(literal) > MAX_LITERAL_DIGITS:
            raise ValueError(
                f"expression {text!r}: the number {literal[:20]}... has {len(literal)} characters; "
                f"at most {MAX_LITERAL_DIGITS} are allowed"
            )
        try:
            return _constant(float(node.value), node, text)
        except OverflowError:
            raise ValueError(f"expression {text!r}: the number {literal[:20]}... is too large") from None
    elif isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ValueError(f"expression {text!r}: names starting with '_' are not allowed: {node.id!r}")
        if node.id in FUNCTIONS:
            raise ValueError(f"expression {text!r}: {node.id!r} is a function; call it like {node.id}(x)")
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id not in variables:
            variables.append(node.id)
        return None
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ValueError(
                f"expression {text!r}: operator {type(node.op).__name__} in {_piece(node, text)} is not "
                f"allowed; allowed: {sorted(set(_OP_TEXT.values()))}"
            )
        left = _check(node.left, text, variables)
        right = _check(node.right, text, variables)
        if isinstance(node.op, ast.Pow) and right is not None and abs(right) > MAX_EXPONENT:
            raise ValueError(
                f"expression {text!r}: the exponent in {_piece(node, text)} is {right:.6g}; "
                f"at most {MAX_EXPONENT} in size is allowed"
            )
        if left is not None and right is not None:
            return _fold(node, text, lambda: _BINOPS[type(node.op)](left, right))
        return None
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ValueError(f"expression {text!r}: unary operator in {_piece(node, text)} is not allowed")
        operand = _check(node.operand, text, variables)
        return None if operand is None else _UNARY[type(node.op)](operand)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ValueError(
                f"expression {text!r}: only plain function calls are allowed (no attribute access or computed callables), got {_piece(node.func, text)}"
            )
        if node.func.id not in FUNCTIONS:
            raise ValueError(
                f"expression {text!r}: function {node.func.id!r} is not allowed; allowed: {sorted(FUNCTIONS)}"
            )
        if node.keywords or len(node.args) != 1:
            raise ValueError(f"expression {text!r}: {node.func.id}() takes exactly one positional argument")
        arg = _check(node.args[0], text, variables)
        if arg is not None:
            np_fn = FUNCTIONS[node.func.id][0]
            return _fold(node, text, lambda: np_fn(np.float64(arg)))
        return None
    else:
        what = {
            ast.Attribute: "attribute access",
            ast.Subscript: "subscripts",
            ast.Lambda: "lambdas",
            ast.Compare: "comparisons",
            ast.BoolOp: "boolean operators",
            ast.IfExp: "conditional expressions",
            ast.NamedExpr: "assignments",
        }.get(type(node), f"{type(node).__name__} nodes")
        raise ValueError(f"expression {text!r}: {what} are not allowed: {_piece(node, text)}")


def _evaluate(node: ast.expr, env: Mapping[str, Any], use_torch: bool) -> Any:
    # Only node types accepted by _check can reach here.
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):  # _check allows numbers only
        return float(node.value)
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id] if node.id in CONSTANTS else env[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, env, use_torch), _evaluate(node.right, env, use_torch))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, env, use_torch))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):  # _check allows plain calls only
        np_fn, torch_fn = FUNCTIONS[node.func.id]
        arg = _evaluate(node.args[0], env, use_torch)
        if use_torch:
            return torch_fn(arg if isinstance(arg, torch.Tensor) else torch.tensor(arg, dtype=torch.float64))
        return np_fn(arg)
    raise ValueError(f"expression: unexpected node {type(node).__name__}")  # unreachable after _check
