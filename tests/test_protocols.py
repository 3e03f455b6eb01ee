"""The protocols the environment template drives: Propagator (ThreeBody-v0) and TrainingRun
(CrossEntropy-v0). Each implementation satisfies its protocol and answers one real call."""

from __future__ import annotations

import numpy as np
import pytest

from stepgym.crossentropy.config import CrossEntropyConfig
from stepgym.crossentropy.trainer import StepOutcome, Trainer, TrainingRun
from stepgym.errors import ConfigError
from stepgym.integrators.base import Observation, Propagator, make_propagator
from stepgym.integrators.bodies import Body
from stepgym.integrators.rebound_backend import ReboundPropagator
from stepgym.integrators.yoshida import YoshidaPropagator

# an eccentric two-body orbit (total mass 1, separation 1), G = 1
BINARY = [
    Body(0.5, (0.5, 0.0, 0.0), (0.0, 0.4, 0.0)),
    Body(0.5, (-0.5, 0.0, 0.0), (0.0, -0.4, 0.0)),
]


@pytest.mark.parametrize("integrator", ["leapfrog", "janus", "yoshida4"])
def test_propagators_satisfy_the_protocol_and_report_energy_error(integrator: str) -> None:
    propagator = make_propagator(integrator)
    assert isinstance(propagator, Propagator)
    expected = YoshidaPropagator if integrator == "yoshida4" else ReboundPropagator
    assert type(propagator) is expected
    propagator.load(BINARY)
    assert propagator.initial_energy == pytest.approx(-0.25 + 0.5 * 0.16, rel=1e-12)
    assert propagator.energy_error() == 0.0
    first = propagator.observe()
    assert isinstance(first, Observation)
    assert first.t == 0.0 and first.min_separation == pytest.approx(1.0)
    result = propagator.advance_raw_to(0.5, 1e-2)
    assert result.status is None and result.work.steps > 0
    after = propagator.observe()
    assert after.t >= 0.5 and after.last_step > 0.0
    error = propagator.energy_error()
    assert 0.0 < error < 1e-3
    relative = abs(propagator.energy() - propagator.initial_energy) / abs(propagator.initial_energy)
    assert error == relative
    positions, velocities = np.zeros((2, 3)), np.zeros((2, 3))
    propagator.read(positions, velocities)
    assert np.isfinite(positions).all() and positions[0, 0] != 0.5
    propagator.release()
    with pytest.raises(RuntimeError):
        propagator.read(positions, velocities)


@pytest.mark.parametrize("integrator", ["leapfrog", "yoshida4"])
def test_load_refuses_bodies_whose_energy_cannot_be_a_reference(integrator: str) -> None:
    # T = 2 * (0.5 * 0.5 * 1^2) = 0.5 = G m1 m2 / r: E = 0 exactly, no relative error
    zero_energy = [
        Body(0.5, (0.25, 0.0, 0.0), (0.0, 1.0, 0.0)),
        Body(0.5, (-0.25, 0.0, 0.0), (0.0, -1.0, 0.0)),
    ]
    propagator = make_propagator(integrator)
    with pytest.raises(ConfigError, match="non-zero energy"):
        propagator.load(zero_energy)


def test_an_object_without_the_error_side_is_not_a_propagator() -> None:
    class NoError:
        G = 1.0
        view = None
        t = 0.0

        def load(self, bodies: object) -> None: ...

    assert not isinstance(NoError(), Propagator)


def test_trainer_satisfies_the_training_run_protocol() -> None:
    config = CrossEntropyConfig(task="blobs", model="linear", max_steps=3, n_samples=64)
    trainer = Trainer(config, np.random.default_rng(0))
    assert isinstance(trainer, TrainingRun)
    outcome = trainer.step(config.base_lr, 0.0)
    assert isinstance(outcome, StepOutcome) and trainer.step_count == 1
    assert trainer.state is outcome.state
    assert trainer.metrics()["step"] == 1
    failure = trainer.failure_transition()
    assert failure.diverged and failure.evaluations >= 2 * outcome.work.evaluations
    trainer.close()
    with pytest.raises(RuntimeError, match="closed"):
        trainer.step(config.base_lr, 0.0)
