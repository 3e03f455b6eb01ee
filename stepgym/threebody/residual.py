"""The residual action: the agent scales a rule's step by 2^a, a in octaves (0 = the rule).

``step_mode="residual"`` keeps a rule (``residual_rule`` at ``residual_value``, e.g. the
timescale rule at a tuned eta) and lets the action pick a multiplier m = 2^a on its step, with
a in [-k, k] (``residual_octaves``). Optionally the multiplier is rounded to a power of two
(``residual_rungs``) and a change only takes effect once the current multiplier has been
held for ``residual_hold`` decisions, so the step changes rarely and by factors of two.
"""

from __future__ import annotations

import math

SNAP_OCTAVES = 1e-9
"""Requests within this many octaves of a whole octave are taken as that octave exactly (the
action map's log decoding is off by an ulp or so)."""


class ResidualMultiplier:
    """Turns the requested multiplier of each decision into the one applied.

    Args:
        rungs: round the multiplier to the nearest power of two (in octaves).
        hold: decisions a multiplier is held before a different one may take over.
    """

    def __init__(self, rungs: bool = False, hold: int = 1) -> None:
        self.rungs = rungs
        self.hold = hold
        self.reset()

    def reset(self) -> None:
        """New episode: the rule itself (m = 1), and the first request takes effect."""
        self.current = 1.0
        self.held = self.hold

    def __call__(self, requested: float) -> float:
        """The multiplier applied in this decision for a requested one (> 0)."""
        octaves = math.log2(requested)
        if self.rungs or abs(octaves - round(octaves)) < SNAP_OCTAVES:
            octaves = round(octaves)  # whole octaves exactly: action 0 is the rule bit for bit
        wanted = 2.0**octaves
        if wanted != self.current and self.held >= self.hold:
            self.current = wanted
            self.held = 0
        self.held += 1
        return self.current


__all__ = ["ResidualMultiplier"]
