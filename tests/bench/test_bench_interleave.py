"""Interleaved timing: every call once per round in a rotating order, ratios per round."""
from __future__ import annotations

import pytest

from bcedge.bench.interleave import interleave


def test_rounds_rotate_the_order_and_ratios_are_per_round():
    order = []
    clock_now = [0.0]
    cost = {"slow": 3.0, "fast": 1.0, "mid": 2.0}

    def call(name):
        def run():
            order.append(name)
            clock_now[0] += cost[name]
        return run

    runs = interleave({n: call(n) for n in cost}, rounds=3, warmup=1, clock=lambda: clock_now[0])
    assert order[:3] == ["slow", "fast", "mid"]                       # warm-up, once each
    timed = order[3:]
    assert [timed[i * 3] for i in range(3)] == ["slow", "fast", "mid"]  # a different one leads each round
    assert runs.samples["slow"] == [3.0, 3.0, 3.0]
    assert runs.median_ms("mid") == 2000.0
    assert runs.speedup("slow", "fast") == {"median": 3.0, "p10": 3.0, "p90": 3.0, "rounds": 3}
    assert runs.summary("fast")["n"] == 3


def test_no_rounds_is_refused():
    with pytest.raises(ValueError, match="rounds"):
        interleave({"a": lambda: None}, rounds=0)
