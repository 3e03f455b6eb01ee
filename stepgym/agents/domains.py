"""Per-environment evaluation adaptors: what "error", "cost" and "failure" mean for an env.

The evaluator, the matched-cost comparison and the transfer table are generic; everything
domain-specific comes from a :class:`~stepgym.episodes.Domain`, which each environment
declares in its module's ``ENV_SPEC`` (:mod:`stepgym.envs.spec`). ``DOMAINS`` looks a domain up
by environment id there, importing only that environment's module; listing the ids
(``list(DOMAINS)``, ``id in DOMAINS``, ``len(DOMAINS)``) imports none.
``DOMAINS.add(env_id, domain)`` still sets (or overrides) the domain of an environment
registered with Gymnasium directly.
"""

from __future__ import annotations

from typing import Any

from stepgym.crossentropy.evaluation import CROSS_ENTROPY_DOMAIN
from stepgym.deprecation import deprecated_names
from stepgym.envs.spec import declares_domain, env_ids, find_env_spec
from stepgym.episodes import Domain, EpisodeInfos, end_reason
from stepgym.errors import UnknownNameError, unknown_name_message
from stepgym.registry import Registry
from stepgym.threebody.evaluation import THREE_BODY_DOMAIN
from stepgym.threebody.records import FAILURE_REASONS


class DomainRegistry(Registry[Domain]):
    """Domains by environment id: those added here, else the one the env's ``EnvSpec``
    declares (its module is imported on first use)."""

    def _declared(self, env_id: object) -> Domain | None:
        if not isinstance(env_id, str):
            return None
        spec = find_env_spec(env_id)
        return spec.domain if spec is not None else None

    def get(self, name: str) -> Domain:
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        domain = self._declared(name)
        if domain is None:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, self.names())
                + " Declare a domain in the environment's EnvSpec."
            )
        return domain

    def names(self) -> list[str]:
        """Ids with a domain added here or declared (read from the declarations: no module
        is imported)."""
        declared = [env_id for env_id in env_ids() if declares_domain(env_id)]
        return list(dict.fromkeys([*self._entries, *declared]))

    def items(self) -> list[tuple[str, Domain]]:
        """(id, domain) pairs; imports every environment module that declares one."""
        return [(name, self.get(name)) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or declares_domain(name)

    def __iter__(self) -> Any:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


DOMAINS: Registry[Domain] = DomainRegistry("environment evaluation adaptor")


def domain_for(env_id: str) -> Domain:
    """The evaluation adaptor of ``env_id``; an unknown id raises a "did you mean" error."""
    return DOMAINS.get(env_id)


__getattr__ = deprecated_names(
    __name__,
    {
        "THREE_BODY_FAILURES": (
            "THREE_BODY_FAILURES is deprecated: use "
            "stepgym.threebody.evaluation.END_REASONS.failure.",
            lambda: FAILURE_REASONS,
        )
    },
)


__all__ = [
    "CROSS_ENTROPY_DOMAIN",
    "DOMAINS",
    "THREE_BODY_DOMAIN",
    "Domain",
    "DomainRegistry",
    "EpisodeInfos",
    "domain_for",
    "end_reason",
]
