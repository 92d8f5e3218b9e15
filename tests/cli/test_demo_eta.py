"""The demo's ETA arithmetic (archkit.cli.demo_eta), driven by a fake clock: no timing is measured."""

import pytest

from archkit.cli import demo_eta
from archkit.cli.demo import DemoConfig
from archkit.cli.demo_eta import (
    ETA_MIN_STEPS,
    ETA_SKIP_STEPS,
    STAGE_COST_IN_VQVAE_STEPS,
    DemoEta,
    eta_printer,
    stage_units,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stage_units_follow_the_budgets():
    cfg = DemoConfig()
    units = stage_units(cfg)
    assert list(units) == ["vqvae", "encode", "prior-top", "prior-bottom", "sample", "evaluate"]
    assert units["vqvae"] == cfg.vqvae_steps + 2 * STAGE_COST_IN_VQVAE_STEPS["vqvae-eval"]  # evaluated at 500, 1000
    more = stage_units(DemoConfig(prior_steps=[2000, 500], classifier_epochs=20, grid_per_class=20))
    assert more["prior-top"] == pytest.approx(2 * units["prior-top"])
    assert more["prior-bottom"] == pytest.approx(units["prior-bottom"] / 2)
    assert more["sample"] == pytest.approx(2 * units["sample"])
    assert more["evaluate"] > units["evaluate"] and more["encode"] == units["encode"]


def test_on_several_processes_rank_0s_stages_cost_more_steps_once_the_speedup_is_known(monkeypatch):
    cfg = DemoConfig()
    one = stage_units(cfg)
    assert stage_units(cfg, 2) == one  # no measured DDP speedup: the one-process ratios
    monkeypatch.setattr(demo_eta, "DDP_STEP_SPEEDUP", {2: 1.5})
    two = stage_units(cfg, 2)
    assert stage_units(cfg, 1) == one and stage_units(cfg, 3) == one
    for name in ("prior-top", "prior-bottom"):  # trained in parallel like stage 1, whose step is the unit
        assert two[name] == one[name]
    for name in ("encode", "sample", "evaluate"):  # rank 0 alone, as long as on one process: 1.5 faster steps
        assert two[name] == pytest.approx(1.5 * one[name])
    evals = one["vqvae"] - cfg.vqvae_steps
    assert two["vqvae"] == pytest.approx(cfg.vqvae_steps + 1.5 * evals)


def run_as_modelled(cfg, seconds_per_unit, warmup_s=0.0, slower_after_stage1=1.0):
    """Walk a fake demo through the ETA: every unit costs `seconds_per_unit` (stages 2-6 times the factor)."""
    clock, lines = FakeClock(), []
    units = stage_units(cfg)
    eta = DemoEta(units, clock=clock)
    on_step = eta_printer(cfg, 0, eta, lines.append)
    train = 0.0
    for step in range(1, cfg.vqvae_steps + 1):
        dt = seconds_per_unit + (warmup_s if step <= ETA_SKIP_STEPS else 0.0)
        train += dt
        clock.now += dt
        on_step(step, train)
    clock.now += (units["vqvae"] - cfg.vqvae_steps) * seconds_per_unit  # stage 1's evaluations
    stage_start = 100.0
    for name, u in units.items():
        if name != "vqvae":
            clock.now += u * seconds_per_unit * slower_after_stage1
        eta.stage_done(name, clock.now - stage_start)
        stage_start = clock.now
    return eta.log, lines, clock.now - 100.0


def test_eta_is_exact_when_the_machine_follows_the_costs_and_skips_the_warmup():
    cfg = DemoConfig()
    log, lines, total = run_as_modelled(cfg, 0.3, warmup_s=1.0)
    assert len(lines) == 1 and f"after {ETA_MIN_STEPS} steps" in lines[0]
    assert [e["after"] for e in log] == [
        f"vqvae step {ETA_MIN_STEPS}",
        "vqvae",
        "encode",
        "prior-top",
        "prior-bottom",
        "sample",
    ]
    first = log[0]
    assert first["eta_s"] == pytest.approx(total - first["elapsed_s"], rel=1e-3)  # the 10 s warm-up did not count
    for e in log[1:]:  # after a stage the warm-up is part of the measured speed: close, a little high
        assert e["eta_s"] == pytest.approx(total - e["elapsed_s"], rel=0.05)


def test_eta_after_each_stage_follows_a_change_of_speed():
    cfg = DemoConfig()
    log, _, total = run_as_modelled(cfg, 0.3, slower_after_stage1=3.0)
    errors = [abs(e["eta_s"] - (total - e["elapsed_s"])) / (total - e["elapsed_s"]) for e in log]
    assert errors[0] > 0.4  # stage 1 ran 3x faster than the rest: the first ETA is too low
    assert errors[-1] < errors[3] < errors[1]  # after stage 1, each stage measured moves the estimate toward the truth


def test_skipped_stages_do_not_count_as_fast_ones():
    clock = FakeClock()
    eta = DemoEta({"vqvae": 0.0, "encode": 0.0, "prior-top": 100.0, "prior-bottom": 300.0, "evaluate": 50.0}, clock)
    assert eta.stage_done("vqvae", 0.01) is None and eta.stage_done("encode", 0.01) is None  # nothing measured
    clock.now += 50.0
    assert eta.stage_done("prior-top", 50.0) == pytest.approx(0.5 * 350)
    assert eta.stage_done("prior-bottom", 150.0) == pytest.approx(0.5 * 50)
    assert eta.stage_done("evaluate", 25.0) is None  # the last stage: nothing left to estimate
    assert [e["after"] for e in eta.log] == ["prior-top", "prior-bottom"] and eta.log[0]["elapsed_s"] == 50.0


def test_a_resumed_stage_one_counts_from_its_own_first_steps():
    cfg, lines = DemoConfig(), []
    eta = DemoEta(stage_units(cfg), clock=FakeClock())
    on_step = eta_printer(cfg, 600, eta, lines.append)  # resumed at step 600: 400 steps and one evaluation left
    for k in range(1, ETA_MIN_STEPS + 1):
        on_step(600 + k, 0.5 * k)
    rest = sum(v for name, v in stage_units(cfg).items() if name != "vqvae")
    expected = 0.5 * (cfg.vqvae_steps - 600 - ETA_MIN_STEPS + STAGE_COST_IN_VQVAE_STEPS["vqvae-eval"] + rest)
    assert eta.log[0]["eta_s"] == pytest.approx(expected, abs=0.1)
    assert f"about {expected / 60:.1f} min more" in lines[0]
