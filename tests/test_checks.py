"""The shared argument checks: what they accept, what they refuse, and how they say so."""

import numpy as np
import pytest

from storylab.checks import check_int, check_number


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None, -1, np.float64(1.0)])
def test_check_int_refuses_bools_floats_strings_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"^n_states: expected an integer >= 0, got ") as error:
        check_int("n_states", value)
    assert "\n" not in str(error.value)


def test_check_int_accepts_python_and_numpy_integers_in_range():
    assert check_int("k", 0) == 0 and check_int("k", np.int64(5), minimum=1) == 5
    assert type(check_int("k", np.int32(3))) is int
    assert check_int("k", 9, below=10) == 9
    with pytest.raises(ValueError, match=r"k: expected an integer in \[0, 10\), got 10"):
        check_int("k", 10, below=10)


@pytest.mark.parametrize("value", [True, "0.5", None, -0.1])
def test_check_number_refuses_bools_strings_and_below_minimum(value):
    with pytest.raises(ValueError, match=r"^lr: expected a number >= 0, got "):
        check_number("lr", value)


def test_check_number_strict_and_types():
    assert check_number("lr", 3) == 3.0 and type(check_number("lr", np.float32(0.5))) is float
    assert check_number("x", 0.0) == 0.0
    with pytest.raises(ValueError, match="x: expected a number > 0, got 0.0"):
        check_number("x", 0.0, strict=True)
