"""Data: built-in datasets (shipped inside installed packages or generated) and file readers."""
from .digits import load_digits

__all__ = ["load_digits"]
