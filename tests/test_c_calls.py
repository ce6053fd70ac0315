"""Generated kernel calls name their literal arguments after the runtime's own prototypes."""
from __future__ import annotations

import re

import pytest

from conftest import export_example, random_example
from edgecompile.c_calls import _LITERAL, kernel_parameters, name_arguments, split_arguments
from models_for_tests import INPUT_SHAPES, ConvBNNet, OddConvNet, ResidualNet


def test_prototypes_are_read_from_the_runtime_headers():
    params = kernel_parameters()
    assert params["ec_conv2d_fast_s8"][:4] == ("input", "in_c", "in_h", "in_w")
    assert params["ec_conv2d_fast_s8"][-1] == "scratch"
    assert params["ec_crop_s8"][0] == "input" and len(params) > 40


def test_literals_are_named_and_everything_else_is_kept():
    call = "ec_crop_s8(input, 3, 28, 28, 0, -1, &ec_arena[4], 8, 28)"
    named = name_arguments(call)
    assert named.startswith("ec_crop_s8(input, /*") and "&ec_arena[4]" in named
    assert re.sub(r"/\*\w+=\*/", "", named) == call  # only comments were added
    assert name_arguments("ec_no_such_kernel(1, 2)") == "ec_no_such_kernel(1, 2)"
    assert name_arguments("ec_crop_s8(1, 2)") == "ec_crop_s8(1, 2)"  # wrong arity: left alone
    assert split_arguments("a[1, 2], f(x, y), 3") == ["a[1, 2]", "f(x, y)", "3"]


@pytest.mark.parametrize("model_class", [ConvBNNet, OddConvNet, ResidualNet])
@pytest.mark.slow
def test_every_kernel_call_of_an_export_is_named(model_class, tmp_path):
    result = export_example(random_example(model_class, INPUT_SHAPES[model_class], tmp_path), "out", vectors=4)
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    calls = re.findall(r"\b(ec_\w+)\((.*?)\);", text)
    kernels = [c for c in calls if c[0] in kernel_parameters()]
    assert kernels
    for name, args in kernels:
        bare = [a for a in split_arguments(args) if _LITERAL.fullmatch(a)]
        assert not bare, (name, args)
