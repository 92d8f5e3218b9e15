"""aeon classifiers over archkit's torch ROCKETs: a one-import swap for aeon's own (any device, unequal lengths).

Needs aeon (`pip install 'archkit[seq]'`); `import archkit` never imports this package, so archkit
works without aeon.
"""

try:
    import aeon  # noqa: F401
except ImportError:
    raise ImportError("archkit.aeon needs aeon: install the `seq` extra, pip install 'archkit[seq]'") from None

from .rocket import HydraClassifier, MiniRocketClassifier, MultiRocketClassifier

__all__ = ["HydraClassifier", "MiniRocketClassifier", "MultiRocketClassifier"]
