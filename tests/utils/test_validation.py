"""check_int / check_float / check_range / check_choice: the argument named, what was expected, what was given."""

import math
import subprocess
import sys
import warnings

import pytest

from archkit.utils.notices import UnreadableFilesWarning, name_files, warn
from archkit.utils.validation import check_choice, check_float, check_int, check_range


def test_check_int():
    assert check_int(3, "steps", 1) == 3
    with pytest.raises(ValueError, match=r"^steps: expected an int >= 1, got 0$"):
        check_int(0, "steps", 1)
    with pytest.raises(TypeError, match=r"^steps: expected an int in \[1, 10\], got 2\.5$"):
        check_int(2.5, "steps", 1, 10)
    with pytest.raises(TypeError, match="got True"):
        check_int(True, "steps")


def test_check_float_refuses_nan_inf_and_bounds():
    assert check_float(1, "lr", 0, min_open=True) == 1.0
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=r"^lr: expected a finite number"):
            check_float(bad, "lr")
    with pytest.raises(ValueError, match=r"^keep: expected a number in \(0, 1\], got 0\.0$"):
        check_float(0.0, "keep", 0, 1, min_open=True)
    with pytest.raises(TypeError, match=r"^lr: expected a number"):
        check_float("1e-3", "lr")
    with pytest.raises(ValueError, match=r"^x: expected a number <= 2"):
        check_range(3, "x", max_val=2)


def test_check_choice():
    assert check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^mode: expected one of \['a', 'b'\], got 'c'$"):
        check_choice("c", "mode", ("a", "b"))


def test_archkit_warnings_are_one_line_naming_files_with_a_count():
    assert name_files(["a", "b", "c", "d", "e"]) == "'a', 'b', 'c' and 2 more"
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from archkit.utils.notices import warn, UnreadableFilesWarning\n"
        "warn('2 unreadable files: a.png, b.png', UnreadableFilesWarning)\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err == "archkit: UnreadableFilesWarning: 2 unreadable files: a.png, b.png\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("x", UnreadableFilesWarning)
    assert caught[0].category is UnreadableFilesWarning and issubclass(UnreadableFilesWarning, UserWarning)


def test_check_finite_rows_names_the_first_bad_row_counted_from_the_offset():
    import numpy as np
    import torch

    from archkit.utils import check_finite_rows

    x = np.zeros((4, 5, 2), np.float32)
    check_finite_rows(x, "--x")
    x[2, 1, 0], x[3, 0, 0] = np.inf, np.nan
    with pytest.raises(ValueError, match=r"^--x: row 66 holds inf \(every value must be finite"):
        check_finite_rows(x, "--x", offset=64)
    with pytest.raises(ValueError, match=r"^X: row 2"):
        check_finite_rows(torch.from_numpy(x), "X")
    check_finite_rows(x, "X", lengths=np.array([5, 5, 1, 0]))  # past each row's length: padding, never read
    with pytest.raises(ValueError, match="row 2"):
        check_finite_rows(x, "X", lengths=torch.tensor([5, 5, 2, 0]))
    check_finite_rows(np.array([[1, 2]]), "X")  # integers are finite
