"""What `--resume` keeps and what it may change: a resumed run is the run that was saved, continued.

Every field of a run's config is one of three kinds (each trainer lists its own, see `RESUME_FIXED` in
`vqvae.py`, `sequence.py` and `prior.py`):
- fixed: what the saved weights and optimizer state were made with (architecture, quantizer, the data
  and its split, the seed). Given on resume with another value, it is refused in one line naming the flag;
- changeable (every other field: learning rate, steps, epochs, batch size, logging, device,
  precision, ...): given on resume, the new value is used;
- not given on resume: the saved value, whatever the kind, so `--resume` alone continues the run as it was.
A field counts as given when it is named in `explicit` (the CLI passes the flags on its command line) or,
for a Python caller, when it differs from the config's default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from ..io import config_from_dict

NEVER_RESTORED = ("out", "run", "resume", "device", "precision", "compile")  # the run folder; accelerate.py's own


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def flag_name(field: str) -> str:
    """The command-line flag of a config field: lr_schedule -> --lr-schedule."""
    return "--" + field.replace("_", "-")


def resume_config(
    cfg: Any,
    saved: Mapping[str, Any] | None,
    fixed: Collection[str],
    explicit: Collection[str] = (),
    source: str = "the saved run",
    groups: Collection[Collection[str]] = (),
    keep: Collection[str] = (),
) -> list[str]:
    """Make `cfg` (a run config dataclass, changed in place) the saved run's config, with the changes allowed.

    `saved` is the config the run was saved with (a dict read from its folder; None: nothing to restore).
    Returns the names of the fields taken from `saved`. Raises ValueError naming the flag of a given
    field in `fixed` whose value differs from the saved one, and naming `source` and the field when a
    restored value does not fit the config (an edited or foreign file). Fields of one of `groups` are
    given together (e.g. steps and epochs: giving --steps must not bring back the saved --epochs).
    Fields in `keep` are never restored (already used to find the run, e.g. its codes folder).
    """
    if not saved:
        return []
    if not isinstance(saved, Mapping):
        raise ValueError(f"{source}: expected the run's settings as a JSON object, got {type(saved).__name__}")
    fields = dataclasses.fields(cfg)
    given = {f.name for f in fields if f.name in explicit or getattr(cfg, f.name) != _default(f)}
    for group in groups:
        if given & set(group):
            given |= set(group)
    restored = []
    for f in fields:
        name = f.name
        if name in NEVER_RESTORED or name in keep or name not in saved:
            continue
        value, was = getattr(cfg, name), saved[name]
        if name in given and name in fixed and _norm(value) != _norm(was):
            raise ValueError(
                f"{flag_name(name)}: the run was saved with {was!r}, got {value!r}; --resume continues a run as "
                f"it was saved (architecture, quantizer, data and seed stay); leave {flag_name(name)} out or train "
                f"into a new --out"
            )
        if name not in given and _norm(value) != _norm(was):
            setattr(cfg, name, was)
            restored.append(name)
    if restored:  # values read from a file: checked like any config read back (names the field and the file)
        checked = config_from_dict(type(cfg), dataclasses.asdict(cfg), source)
        for name in restored:
            setattr(cfg, name, getattr(checked, name))
    return restored


def _norm(value: Any) -> Any:
    """Lists and tuples compare alike (JSON turns one into the other)."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value
