"""PI step-size control (Gustafsson 1991; Söderlind 2002) as baselines under ``predict()``.

:class:`PIController` controls any setting from the observed energy-error growth per decision;
:class:`TimescalePI` controls eta in ``step_mode="timescale"`` (every step is eta x t_dyn), where
the energy error over one decision's slice of time grows as eta^p for a scheme of order p
(measured on leapfrog, seed-paper starts: eta 1e-3 -> 2e-8, 1e-2 -> 1.9e-6 per slice), so its
gains are scaled by the scheme's order read at ``bind``. Both decide from the ``energy_error``
info entry only and keep one memory per copy of a vector env (see
:class:`stepgym.agents.controller.Controller`).
"""

from __future__ import annotations

import math
from typing import Any

from stepgym.agents.controller import Controller, env_attribute
from stepgym.errors import ConfigError, unknown_name_message
from stepgym.integrators.rebound_integrators import INTEGRATORS

PI_GAINS: dict[str, tuple[float, float]] = {
    "pi34": (0.3, 0.4),
    "pi42": (0.4, 0.2),
    "i": (1.0, 0.0),
}
"""Named (k_I, k_P) pairs, each divided by the error exponent k: Gustafsson's PI.3.4 (the
default), Söderlind's PI.4.2 (smoother), and the elementary integral controller
(``(tol / e_n)^(1/k)``, no proportional term). The small grid to tune the gains over."""


def pi_gains(name: str, exponent: float) -> tuple[float, float]:
    """(k_I, k_P) of the named gain pair for an error growing as setting^``exponent``."""
    if name not in PI_GAINS:
        raise ConfigError(unknown_name_message("PI gain pair", name, list(PI_GAINS)))
    if not exponent > 0:
        raise ConfigError(f"the PI error exponent must be > 0, got {exponent}.")
    k_i, k_p = PI_GAINS[name]
    return k_i / exponent, k_p / exponent


class PIController(Controller):
    """Error-per-step PI control of the setting from the observed energy-error growth.

    Each decision the error estimate is the growth of the relative energy error since the
    previous decision, ``e_n = | |dE_n| - |dE_{n-1}| |``, compared with the target growth per
    decision ``target``. The setting follows the standard PI step-size rule::

        h_{n+1} = h_n * safety * (target / e_n) ** k_I * (e_{n-1} / e_n) ** k_P

    with ``(k_I, k_P)`` = a :data:`PI_GAINS` pair (default ``"pi34"``: 0.3, 0.4) divided by
    ``k = order + 1`` (the local error per step of an order-p scheme; pass ``k_i``, ``k_p`` to
    set them directly), ``safety = 0.9`` and the change per decision limited to
    ``[1/max_change, max_change]``; the setting stays in the action range. The first decision
    uses ``initial`` (default: the smallest setting of the action range, the conservative
    start of classical step-size control). Starting in the middle of the range instead fixes
    the error of the first decision at that setting's, which no later control can undo.
    """

    info_keys = ("energy_error",)

    def __init__(
        self,
        target: float,
        order: float = 2.0,
        safety: float = 0.9,
        initial: float | None = None,
        max_change: float = 5.0,
        k_i: float | None = None,
        k_p: float | None = None,
        gains: str = "pi34",
    ) -> None:
        super().__init__()
        if not target > 0:
            raise ConfigError(f"the PI controller's target error growth must be > 0, got {target}.")
        if not max_change > 1:
            raise ConfigError(f"max_change must be > 1 (a factor per decision), got {max_change}.")
        self.target, self.order, self.safety = target, order, safety
        self.initial, self.max_change, self.gains = initial, max_change, gains
        self.fixed_gains = (k_i, k_p)
        """The gains given explicitly (None: from ``gains`` and the error exponent)."""
        self.set_exponent(order + 1.0)
        self.reset()

    def set_exponent(self, exponent: float) -> None:
        """Scale the named gains for an error growing as setting^``exponent`` (explicit
        ``k_i``/``k_p`` are kept)."""
        k_i, k_p = pi_gains(self.gains, exponent)
        given_i, given_p = self.fixed_gains
        self.k_i = k_i if given_i is None else given_i
        self.k_p = k_p if given_p is None else given_p

    def reset(self) -> None:
        self.current: float | None = None
        self.previous_abs_error: float | None = None
        self.previous_growth: float | None = None

    def factor(self, growth: float) -> float:
        """The change of the setting for this decision's error growth (limited)."""
        if not math.isfinite(growth):
            return 1.0 / self.max_change
        previous = self.previous_growth if self.previous_growth is not None else growth
        factor = self.safety * (self.target / growth) ** self.k_i * (previous / growth) ** self.k_p
        return min(self.max_change, max(1.0 / self.max_change, factor))

    def setting(self) -> float:
        abs_error = abs(float(self.info.get("energy_error", 0.0) or 0.0))
        if self.current is None:
            self.current = self.initial or self.action_map.low
        elif self.previous_abs_error is not None:
            growth = max(abs(abs_error - self.previous_abs_error), 1e-300)
            self.current = min(
                self.action_map.high,
                max(self.action_map.low, self.current * self.factor(growth)),
            )
            self.previous_growth = growth
        self.previous_abs_error = abs_error
        return self.current


class TimescalePI(PIController):
    """PI control of eta in ``step_mode="timescale"`` (the tolerance ``target`` is tuned).

    Over one decision's slice of time the energy error of an order-p scheme stepping
    dt = eta x t_dyn grows as eta^p, so the gains are the named pair divided by p, the bound
    scheme's declared order (2 when it declares none, e.g. IAS15, whose error sits at
    round-off in this mode so that eta runs up until an encounter at a large eta ends some
    episodes at the energy-error limit: 5-30% of 20 default held-out starts). Control one
    decision late cannot anticipate an encounter: on leapfrog at matched cost it is 40x-120x
    the timescale rule's median error for every gain pair of :data:`PI_GAINS` and a change
    limit of 1.25 to 5 per decision (``benchmarks/rules_matched_cost.py --rules pi_eta``): a
    reference for error feedback, not a rule to beat. The first decision uses
    ``initial`` eta (default 1e-3: a slice at it costs about 1% of a 100-slice leapfrog
    episode at the tuned eta, and its error, about 2e-8 per slice on seed-paper starts, sits
    below most targets); from there eta changes by at most ``max_change`` per decision.
    """

    def __init__(self, target: float, initial: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(target, initial=initial, **kwargs)
        self.set_exponent(2.0)

    def bind(self, env: Any) -> None:
        super().bind(env)
        self.set_exponent(float(_scheme_order(env) or 2.0))


def _scheme_order(env: Any) -> int | None:
    """The declared order of the bound env's integrator (None if it declares none)."""
    config = env_attribute(env, "config")
    name = getattr(config, "integrator", None)
    if not isinstance(name, str):
        return None
    if name not in INTEGRATORS:
        return None
    order = getattr(INTEGRATORS.get(name), "order", None)
    return int(order) if isinstance(order, int | float) and order > 0 else None


__all__ = ["PI_GAINS", "PIController", "TimescalePI", "pi_gains"]
