"""Graph passes: BatchNorm folding, ReLU fusion, factorization, memory planning."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from edgecompile import ops
from edgecompile.compiler import CompileOptions, compile_model, optimize
from edgecompile.errors import EdgeCompileError
from edgecompile.frontend import load_model
from edgecompile.ir import Graph
from edgecompile.passes.factorize import factorize_linear_layers, max_useful_rank
from edgecompile.passes.plan_memory import lower_bound, build_buffers, plan_memory
from conftest import randomize_batchnorm, save_torchscript
from models_for_tests import BNFirst, ConvBNNet, WideMLP


def loaded(cls, tmp_path, shape, seed=0):
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    return model, load_model(save_torchscript(model, tmp_path / "m.pt"), shape)


def test_batchnorm_folding_equals_the_unfolded_model(tmp_path, rng):
    model, lm = loaded(ConvBNNet, tmp_path, (3, 24, 24))
    x = rng.standard_normal((8, 3, 24, 24)).astype(np.float32)
    before = lm.graph.run_float(x)
    assert sum(isinstance(n, ops.BatchNorm) for n in lm.graph.nodes) == 3
    optimize(lm.graph, CompileOptions())
    assert not any(isinstance(n, (ops.BatchNorm, ops.Relu, ops.Identity)) for n in lm.graph.nodes)
    after = lm.graph.run_float(x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(after - before)) <= 1e-4 * max(1.0, np.max(np.abs(before)))
    assert np.max(np.abs(after - ref)) <= 1e-4 * max(1.0, np.max(np.abs(ref)))
    assert any("folded" in n for n in lm.graph.notes)


def test_batchnorm_without_a_layer_to_fold_into_is_a_clear_error(tmp_path):
    _, lm = loaded(BNFirst, tmp_path, (1, 8, 8))
    with pytest.raises(EdgeCompileError, match="BatchNorm 'bn'.*model input"):
        optimize(lm.graph, CompileOptions())


def test_a_graph_pass_error_names_the_model_file(tmp_path):
    _, lm = loaded(BNFirst, tmp_path, (1, 8, 8))
    with pytest.raises(EdgeCompileError, match=f"^{re.escape(str(lm.source))}: BatchNorm 'bn'.*model input"):
        compile_model(lm, None, CompileOptions())


def test_relu_fuses_as_lower_clamp(tmp_path):
    _, lm = loaded(WideMLP, tmp_path, (64,))
    optimize(lm.graph, CompileOptions())
    acts = [(n.attrs.get("act") or {}).get("name") for n in lm.graph.nodes]
    assert acts == ["relu", "relu", None]


@pytest.mark.slow
def test_factorization_rule_and_exact_svd(tmp_path, rng):
    _, lm = loaded(WideMLP, tmp_path, (64,))
    g = lm.graph
    optimize(g, CompileOptions())
    w = {n.name: n.params["weight"].astype(np.float64) for n in g.nodes}
    decisions = {d.layer: d for d in factorize_linear_layers(g, 20)}
    # 64->200: limit 48.5, 200->150: 85.7, 150->30: 25 -> rank 20 factorizes all three
    for name, (i, o) in {"layers.0": (64, 200), "layers.1": (200, 150), "layers.2": (150, 30)}.items():
        d = decisions[name]
        assert d.applied == (20 < max_useful_rank(i, o))
        assert d.weights_after == 20 * (i + o)
        a, b = g.node(f"{name}.V").params["weight"], g.node(f"{name}.U").params["weight"]
        u, s, vt = np.linalg.svd(w[name], full_matrices=False)
        best = (u[:, :20] * s[:20]) @ vt[:20]
        assert np.allclose(b.astype(np.float64) @ a.astype(np.float64), best, atol=1e-4)
        assert d.energy == pytest.approx(np.sum(s[:20] ** 2) / np.sum(s ** 2))
    decisions = factorize_linear_layers(g, 60)
    assert {d.layer: d.applied for d in decisions}["layers.1.V"] is False  # 200->20... rank 60 >= 18.2


def test_factorization_keeps_layers_where_it_would_not_save(tmp_path):
    _, lm = loaded(WideMLP, tmp_path, (64,))
    optimize(lm.graph, CompileOptions())
    decisions = factorize_linear_layers(lm.graph, 49)
    assert [d.applied for d in decisions] == [False, True, False]
    assert "no saving" in decisions[0].reason


class Step(ops.Op):
    """A layer that cannot run in place (only its buffers matter to the planner)."""

    op_type = "TestStep"


def chain_graph(sizes, cls=Step) -> Graph:
    g = Graph()
    g.add_tensor("t0", (sizes[0],))
    g.inputs = ["t0"]
    for i, size in enumerate(sizes[1:], start=1):
        g.add_tensor(f"t{i}", (size,))
        g.add_node(cls(f"n{i}", [f"t{i - 1}"], [f"t{i}"]))
    g.outputs = [f"t{len(sizes) - 1}"]
    return g


def test_elementwise_ops_run_in_place():
    g = chain_graph([64, 64, 64, 64, 64, 64], cls=ops.Relu)
    plan = plan_memory(g)
    # t1 is written by n1 (not in place: its input is the caller's), then n2..n4 overwrite it;
    # the last writes the caller's output buffer
    assert plan.arena_size == 64 and plan.lower_bound == 64


@pytest.mark.parametrize("seed", range(20))
def test_chain_arena_equals_lower_bound(seed):
    rng = np.random.default_rng(seed)
    sizes = (rng.integers(1, 60, size=rng.integers(3, 12)) * 4).tolist()
    g = chain_graph(sizes)
    plan = plan_memory(g)
    inner = sizes[1:-1]
    pairs = [a + b for a, b in zip(inner, inner[1:])] + inner
    assert plan.lower_bound == max(pairs, default=0)
    assert plan.arena_size == plan.lower_bound


def test_greedy_counterexample_chain_still_meets_the_bound():
    # sizes 10,2,9,10 (x4): greedy-by-size alone needs 21*4; the bound is 19*4
    g = chain_graph([4, 40, 8, 36, 40, 4])
    plan = plan_memory(g)
    assert plan.arena_size == plan.lower_bound == 76


def test_dag_plans_never_overlap_live_buffers(rng):
    for _ in range(30):
        g = Graph()
        g.add_tensor("x", (8,))
        g.inputs = ["x"]
        names = ["x"]
        for i in range(int(rng.integers(3, 10))):
            src = names[int(rng.integers(0, len(names)))]
            g.add_tensor(f"t{i}", (int(rng.integers(1, 50)) * 4,))
            g.add_node(Step(f"n{i}", [src], [f"t{i}"]))
            names.append(f"t{i}")
        g.outputs = [names[-1]]
        from edgecompile.passes.cleanup import remove_dead_nodes
        remove_dead_nodes(g)
        plan = plan_memory(g)  # plan_memory asserts no overlap itself
        assert plan.lower_bound <= plan.arena_size <= plan.total_activation_bytes
        assert plan.lower_bound == lower_bound(build_buffers(g))


@pytest.mark.slow
def test_lenet_arena_is_the_largest_pair(digits_lenet_export):
    auto = digits_lenet_export.compiled.plan
    plan = plan_memory(digits_lenet_export.compiled.graph, "in-place")
    assert auto.arena_size < plan.arena_size and auto.patches is not None  # the first layers in bands
    # conv1 output 6x26x26 (4056 B) + pool output 6x13x13 (1014 B, rounded to 1016), layer by layer;
    # the pool writes over conv1's output plane by plane (--memory-plan auto)
    assert plan.layer_bound == 4056 + 1016
    assert plan.lower_bound <= plan.arena_size < plan.layer_bound
    assert plan.overlapping and plan.overlapping[0].startswith("max_pool2d")
    assert plan.total_activation_bytes > plan.arena_size


def test_prune_zeroes_the_smallest_share_of_a_layer_and_names_unknown_layers():
    import copy

    from edgecompile.errors import EdgeCompileError
    from edgecompile.ir import Graph
    from edgecompile import ops
    from edgecompile.passes.prune import prune

    g = Graph("p")
    g.add_tensor("x", (6,))
    g.add_tensor("y", (4,))
    w = np.arange(1, 25, dtype=np.float32).reshape(4, 6) * np.where(np.arange(24) % 2, -1, 1).reshape(4, 6)
    g.nodes.append(ops.Linear("fc", ["x"], ["y"], params={"weight": w.copy(), "bias": np.ones(4, np.float32)}))
    g.inputs, g.outputs = ["x"], ["y"]
    h = copy.deepcopy(g)
    prune(h, {"fc": 0.5})
    pruned = h.nodes[0].params["weight"]
    assert np.count_nonzero(pruned == 0) == 12
    assert np.array_equal(pruned[np.abs(w) > 12], w[np.abs(w) > 12])  # the 12 largest stay as they were
    assert np.array_equal(h.nodes[0].params["bias"], np.ones(4))
    prune(h, {"fc": 0.0})
    assert np.count_nonzero(h.nodes[0].params["weight"] == 0) == 12
    with pytest.raises(EdgeCompileError, match="--prune names layer.*fc9.*layers with weights: fc"):
        prune(copy.deepcopy(g), {"fc9": 0.5})
