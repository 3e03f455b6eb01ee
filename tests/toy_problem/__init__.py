"""A third step-size problem, for the test that adds an environment from one module: gradient
descent (or heavy-ball momentum) on a random ill-conditioned quadratic.

The subpackage holds the problem (:mod:`toy_problem.descent`) and its parts: features, reward
terms, end reasons, evaluation domain and classical baselines (:mod:`toy_problem.parts`).
The environment itself is ``tests/toy_quadratic_env.py``.
"""
