"""The chaotic three-body problem: initial conditions, physics helpers, features, rewards.

The environment itself is :class:`stepgym.envs.three_body.ThreeBodyEnv`
(``gymnasium.make("stepgym/ThreeBody-v0", ...)``); the REBOUND integrators live in
:mod:`stepgym.integrators.rebound_backend`.
"""
