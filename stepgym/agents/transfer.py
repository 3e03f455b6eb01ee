"""Transfer: evaluate policies trained on one integrator/optimizer/model on others.

No retraining: the policy keeps its weights and observation statistics; only the env
keyword on the transfer axis changes. This is meaningful only through a dimensionless
action (a per-step rule's ``step_mode`` for ThreeBody: ``"timescale"``, ``"radius"``, ``"jerk"``,
``"crossing"`` or ``"residual"``; ``action="radius"`` for CrossEntropy),
so a policy whose env arguments lack it is refused, and so is a target whose observation or
action space differs from the one the policy was trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepgym.agents.config import TransferConfig
from stepgym.agents.domains import Domain, domain_for
from stepgym.agents.envs import make_env, merged
from stepgym.agents.evaluate import held_out_seeds
from stepgym.agents.policies import TrainedPolicy, load_policy
from stepgym.agents.report import markdown_table, write_csv
from stepgym.agents.rollout import Contender, contender_env, evaluate_contender, summarize
from stepgym.errors import ConfigError, check_positive_int

logger = logging.getLogger(__name__)

CELL_COLUMNS = (
    "trained_on",
    "evaluated_on",
    "median_error",
    "p90_error",
    "failure_rate",
    "median_cost",
    "episodes",
    "run",
)


@dataclass
class TransferReport:
    """The cells of the trained-on x evaluated-on table, and the files written."""

    cells: list[dict[str, Any]]
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)


def check_dimensionless(policy: TrainedPolicy, domain: Domain) -> None:
    """Refuse policies whose action is not dimensionless (their actions mean nothing elsewhere)."""
    kwargs = policy.env_kwargs
    wrong = {
        key: accepted if isinstance(accepted, tuple) else (accepted,)
        for key, accepted in domain.dimensionless.items()
    }
    wrong = {key: accepted for key, accepted in wrong.items() if kwargs.get(key) not in accepted}
    if wrong:
        given = {key: kwargs.get(key) for key in wrong}
        needed = ", ".join(f"{key} in {list(accepted)}" for key, accepted in wrong.items())
        raise ConfigError(
            f"{policy.run_dir} was trained with {given}; transfer needs a dimensionless "
            f"action ({needed}): retrain with --env-kwargs including it."
        )


def check_same_spaces(policy: TrainedPolicy, env_id: str, kwargs: dict[str, Any]) -> None:
    """The target env must present the observation/action spaces the policy was trained on."""
    env = contender_env(env_id, Contender("transfer", policy, kwargs, "policy"))  # stacked too
    try:
        for kind in ("observation_space", "action_space"):
            expected, got = getattr(policy.model, kind), getattr(env, kind)
            if expected != got:
                raise ConfigError(
                    f"cannot transfer {policy.run_dir.name} to {kwargs}: its {kind} is {got}, "
                    f"the policy was trained on {expected}. Use integrator-agnostic features "
                    f"(the defaults) and the same action encoding on every target."
                )
    finally:
        env.close()


def transfer(config: TransferConfig) -> TransferReport:
    """Evaluate every policy on every target; write transfer.md and transfer.csv."""
    if not config.policies or not config.targets:
        raise ConfigError("transfer needs --policies RUN_DIR [...] and --targets NAME [...].")
    check_positive_int("n-episodes", config.n_episodes)
    policies = [load_policy(path, config.use_best, trust=config.trust) for path in config.policies]
    env_id = policies[0].env_id
    if any(p.env_id != env_id for p in policies):
        raise ConfigError("all transferred policies must be trained on the same environment id.")
    domain = domain_for(env_id)
    axis = config.axis or domain.transfer_axis
    seeds = held_out_seeds(domain, config.seed, config.n_episodes)
    for policy in policies:
        check_dimensionless(policy, domain)
        for target in config.targets:
            check_same_spaces(policy, env_id, target_kwargs(policy, axis, target, domain))
    cells = []
    for policy in policies:
        source = str(policy.env_kwargs.get(axis) or env_setting(env_id, policy.env_kwargs, axis))
        for target in config.targets:
            kwargs = target_kwargs(policy, axis, target, domain)
            contender = Contender(f"{source}->{target}", policy, kwargs, "policy")
            rows = evaluate_contender(env_id, contender, domain, seeds)
            cells.append(
                {
                    "trained_on": source,
                    "evaluated_on": target,
                    "run": policy.run_dir.name,
                    **summarize(rows),
                }
            )
    return write_transfer(cells, config.out_dir, env_id, axis, domain)


def env_setting(env_id: str, kwargs: dict[str, Any], axis: str) -> Any:
    """The value ``axis`` takes in the env built with ``kwargs`` (its default if not given)."""
    env = make_env(env_id, kwargs)
    try:
        unwrapped = env.unwrapped
        config = getattr(unwrapped, "config", None)
        return getattr(config, axis, None) or getattr(unwrapped, axis, "default")
    finally:
        env.close()


def target_kwargs(policy: TrainedPolicy, axis: str, target: str, domain: Domain) -> dict[str, Any]:
    """The policy's env kwargs with the axis set to ``target``, on held-out instances."""
    return merged(policy.env_kwargs, {axis: target}, domain.held_out)


NATIVE_COLUMNS = (
    "trained_on",
    "evaluated_on",
    "error_ratio",
    "cost_ratio",
    "failure_rate",
    "native_failure_rate",
)


def against_native(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each transferred cell beside the cell of a policy trained on its target, if any."""
    native = {c["evaluated_on"]: c for c in cells if c["trained_on"] == c["evaluated_on"]}
    rows = []
    for cell in cells:
        home = native.get(cell["evaluated_on"])
        if home is None or cell is home:
            continue
        rows.append(
            {
                "trained_on": cell["trained_on"],
                "evaluated_on": cell["evaluated_on"],
                "error_ratio": cell["median_error"] / home["median_error"],
                "cost_ratio": cell["median_cost"] / home["median_cost"],
                "failure_rate": cell["failure_rate"],
                "native_failure_rate": home["failure_rate"],
            }
        )
    return rows


def write_transfer(
    cells: list[dict[str, Any]], out_dir: Path, env_id: str, axis: str, domain: Domain
) -> TransferReport:
    """transfer.csv (one row per cell) and transfer.md (a matrix of median error / failures)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = list(dict.fromkeys(c["evaluated_on"] for c in cells))
    matrix = []
    for run in dict.fromkeys(c["run"] for c in cells):
        mine = {c["evaluated_on"]: c for c in cells if c["run"] == run}
        first = next(iter(mine.values()))
        row: dict[str, Any] = {f"trained on {axis}": first["trained_on"], "run": run}
        for target in targets:
            cell = mine[target]
            row[target] = (
                f"{cell['median_error']:.3g} / {cell['failure_rate']:.0%} / "
                f"{cell['median_cost']:.3g}"
            )
        matrix.append(row)
    text = (
        f"# Transfer on {env_id}: trained-on x evaluated-on {axis}\n\n"
        f"Each cell: median {domain.error_label} (successful episodes) / failure rate / "
        f"median {domain.cost_label}, on {int(cells[0]['episodes'])} held-out episodes.\n\n"
        + markdown_table(matrix, [f"trained on {axis}", *targets, "run"])
    )
    against = against_native(cells)
    if against:
        text += (
            f"\n## Against the policy trained natively on the target\n\n"
            f"error ratio = transferred median {domain.error_label} / native median "
            f"{domain.error_label}; cost ratio likewise (both over the same held-out "
            "episodes).\n\n" + markdown_table(against, NATIVE_COLUMNS)
        )
    report = TransferReport(cells, text)
    report.files["csv"] = write_csv(cells, out_dir / "transfer.csv", CELL_COLUMNS)
    (out_dir / "transfer.md").write_text(text)
    report.files["markdown"] = out_dir / "transfer.md"
    return report
