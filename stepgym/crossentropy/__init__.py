"""Cross-entropy training as a step-size problem: tasks, models, features, rewards, trainer.

The environment itself is :class:`stepgym.envs.cross_entropy.CrossEntropyEnv`
(``gymnasium.make("stepgym/CrossEntropy-v0", ...)``); the softmax radius lives in
:mod:`stepgym.radius` and the optimizers in :mod:`stepgym.integrators.optimizers`.
"""
