"""stepgym: step-size selection as reinforcement-learning problems.

Importing the package registers its Gymnasium environments:

>>> import gymnasium as gym, stepgym
>>> env = gym.make("stepgym/ThreeBody-v0", integrator="ias15")
"""

from __future__ import annotations

import logging

from stepgym.errors import ConfigError, StepGymError, UnknownNameError
from stepgym.registry import Registry

__version__ = "0.1.0"
__all__ = ["ConfigError", "Registry", "StepGymError", "UnknownNameError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def register_envs() -> None:
    """Register stepgym's environments with Gymnasium (idempotent)."""
    from stepgym.envs import register_all

    register_all()


register_envs()
