"""The time-domain radius rho_t, re-exported: the formulas live in
:mod:`stepgym.integrators.rho_t` (the per-step ``radius`` rule uses them, and the integrators
import nothing from this subpackage)."""

from stepgym.integrators.rho_t import (
    G_TERMS,
    S_TERMS,
    SERIES_PSI,
    SERIES_Z,
    pair_rho_t,
    pair_rho_t_raw,
    pair_terms,
    system_rho_t,
)

__all__ = [
    "G_TERMS",
    "SERIES_PSI",
    "SERIES_Z",
    "S_TERMS",
    "pair_rho_t",
    "pair_rho_t_raw",
    "pair_terms",
    "system_rho_t",
]
