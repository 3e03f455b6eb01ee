"""stepgym.codegen.closure: the written-out per-decision functions of FeatureSet and
WeightedReward are compiled from it."""

from __future__ import annotations

from stepgym.codegen import closure


def test_closure_binds_its_names_and_names_itself_in_tracebacks() -> None:
    body = "        return scale0 * x + offset0\n"
    f = closure("affine", "x", body, {"scale0": 3.0, "offset0": 1.0}, "affine of 1 entry")
    assert f(2.0) == 7.0 and f.__name__ == "affine"
    assert f.__code__.co_filename == "<affine of 1 entry>"
    # the bound values are closure variables, not globals the caller could rebind
    assert sorted(f.__code__.co_freevars) == ["offset0", "scale0"]
