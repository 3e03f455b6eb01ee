"""Evaluate a trained policy and baseline controllers on held-out instances.

Writes into ``out_dir``: ``episodes.csv`` (one row per episode), ``summary.csv`` and
``summary.md`` (median / p90 error over successful episodes, failure rate, median cost, per
controller; the matched-cost comparison), ``matched.csv`` and ``pareto.png``; with
``pictures=True`` also ``pictures/<controller>.png``, the env's rendering of each controller's
first held-out episode.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.agents.baselines import BASELINES, BaselineSpec, check_baseline
from stepgym.agents.config import EvaluateConfig
from stepgym.agents.domains import Domain, domain_for
from stepgym.agents.envs import check_env_id, make_env, merged, parse_env_kwargs
from stepgym.agents.matched import bisect_log
from stepgym.agents.policies import TrainedPolicy, load_policy
from stepgym.agents.report import SUMMARY_COLUMNS, markdown_table, pareto_plot, write_csv
from stepgym.agents.rollout import (
    Contender,
    contender_env,
    evaluate_contender,
    summarize,
)
from stepgym.agents.step_plots import RULE as STEP_PLOT_RULE
from stepgym.agents.step_plots import check_renders, save_pictures, save_step_plot
from stepgym.errors import ConfigError, check_positive_int

logger = logging.getLogger(__name__)

MATCHED_COLUMNS = (
    "controller",
    "parameter",
    "median_cost",
    "cost_ratio",
    "median_error",
    "p90_error",
    "failure_rate",
    "error_ratio_vs_policy",
    "bracketed",
)


@dataclass
class EvaluationReport:
    """What :func:`evaluate` produced."""

    out_dir: Path
    summaries: list[dict[str, Any]]
    episodes: list[dict[str, Any]]
    matched: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    markdown: str = ""


def held_out_seeds(domain: Domain, seed: int, n_episodes: int) -> list[int]:
    """Seeds of the held-out episodes (far from any training seed)."""
    return [seed + domain.eval_seed_offset + i for i in range(n_episodes)]


def baseline_contender(
    env_id: str,
    base_kwargs: dict[str, Any],
    name: str,
    spec: BaselineSpec,
    domain: Domain,
    parameter: float | None,
) -> Contender:
    """The baseline ``name`` at ``parameter`` (None: its default), with its env arguments."""
    kwargs = merged(base_kwargs, spec.env_overrides, domain.held_out)
    value = spec.resolve(parameter, action_map_of(env_id, kwargs)) if spec.parametrised else None
    label = f"{name}({spec.parameter}={value:.3g})" if value is not None else name
    return Contender(
        label, spec.factory(value if value is not None else math.nan), kwargs, name, value
    )


def action_map_of(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """The action map of the env built with ``env_kwargs``."""
    env = make_env(env_id, env_kwargs)
    try:
        return env.unwrapped.action_map  # type: ignore[attr-defined]
    finally:
        env.close()


def baseline_grid(
    env_id: str, base_kwargs: dict[str, Any], name: str, domain: Domain, points: int
) -> list[Contender]:
    """A parametrised baseline over ``points`` log-spaced values (or its single setting)."""
    spec = check_baseline(name, domain.name)
    if not spec.parametrised:
        return [baseline_contender(env_id, base_kwargs, name, spec, domain, None)]
    action_map = action_map_of(env_id, merged(base_kwargs, spec.env_overrides, domain.held_out))
    return [
        baseline_contender(env_id, base_kwargs, name, spec, domain, value)
        for value in spec.grid(action_map, points)
    ]


def matched_cost(
    env_id: str,
    base_kwargs: dict[str, Any],
    name: str,
    domain: Domain,
    seeds: list[int],
    target_cost: float,
    iterations: int,
    done: dict[tuple[str, float], list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bisect baseline ``name``'s parameter to ``target_cost``; (summary row, episode rows).

    ``done`` maps (baseline name, parameter) to episode rows already computed on the same
    seeds (e.g. the grid's ends), which are reused instead of rerun.
    """
    spec = check_baseline(name, domain.name)
    if not spec.parametrised:
        raise ConfigError(
            f"baseline {name!r} has no parameter to match the cost with; "
            f"choose a parametrised one, e.g. timescale or fixed."
        )
    kwargs = merged(base_kwargs, spec.env_overrides, domain.held_out)
    low, high = spec.sweep_range(action_map_of(env_id, kwargs))
    runs: dict[float, list[dict[str, Any]]] = {}

    def cost_of(value: float) -> float:
        contender = baseline_contender(env_id, base_kwargs, name, spec, domain, value)
        cached = (done or {}).get((name, value))
        runs[value] = cached or evaluate_contender(env_id, contender, domain, seeds)
        return summarize(runs[value])["median_cost"]

    result = bisect_log(cost_of, low, high, target_cost, iterations)
    rows = runs[result.parameter]
    summary = {
        "controller": rows[0]["controller"],
        "parameter": result.parameter,
        "bracketed": result.bracketed,
        **summarize(rows),
    }
    return summary, rows


EXTRA_ERRORS = ("phase_error",)
"""Per-episode error metrics (a domain's ``metrics``) summarised like the error when present:
``median_<name>`` and ``p90_<name>`` over the successful episodes where the metric is finite."""


def extra_error_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """median/p90 of each EXTRA_ERRORS metric over successful episodes (a metric no episode
    reported, NaN everywhere, gives no column)."""
    out: dict[str, float] = {}
    for name in EXTRA_ERRORS:
        values = [float(r.get(name, math.nan)) for r in rows]
        finite = np.array(
            [v for v, r in zip(values, rows, strict=True) if math.isfinite(v) and not r["failed"]],
            dtype=float,
        )
        if not all(math.isnan(v) for v in values):
            out[f"median_{name}"] = float(np.median(finite)) if finite.size else math.nan
            out[f"p90_{name}"] = float(np.percentile(finite, 90)) if finite.size else math.nan
    return out


def summary_columns(summaries: list[dict[str, Any]]) -> tuple[str, ...]:
    """SUMMARY_COLUMNS plus the extra error columns some summary row has."""
    extra = [f"{kind}_{name}" for name in EXTRA_ERRORS for kind in ("median", "p90")]
    return (*SUMMARY_COLUMNS, *(c for c in extra if any(c in row for row in summaries)))


def summary_rows(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per controller, in first-seen order."""
    labels = list(dict.fromkeys(r["controller"] for r in episodes))
    rows = []
    for label in labels:
        mine = [r for r in episodes if r["controller"] == label]
        rows.append(
            {
                "controller": label,
                "family": mine[0]["family"],
                "parameter": mine[0]["parameter"],
                **summarize(mine),
                **extra_error_summary(mine),
            }
        )
    return rows


def resolve_target(config: EvaluateConfig) -> tuple[str, dict[str, Any], TrainedPolicy | None]:
    """(env id, base env kwargs, loaded policy or None) from the config."""
    policy = (
        load_policy(config.policy, config.use_best, trust=config.trust)
        if config.policy is not None
        else None
    )
    env_id = config.env_id or (policy.env_id if policy else None)
    if env_id is None:
        raise ConfigError("nothing to evaluate: pass --policy RUN_DIR or --env-id with baselines.")
    check_env_id(env_id)
    overrides = parse_env_kwargs(config.env_kwargs) if config.env_kwargs is not None else {}
    return env_id, merged(policy.env_kwargs if policy else {}, overrides), policy


def build_contenders(
    config: EvaluateConfig,
    env_id: str,
    kwargs: dict[str, Any],
    domain: Domain,
    policy: TrainedPolicy | None,
    names: tuple[str, ...],
) -> list[Contender]:
    """The policy (if any), then each baseline over its grid or at ``--baseline-param``."""
    contenders: list[Contender] = []
    if policy is not None:
        contenders.append(Contender("policy", policy, merged(kwargs, domain.held_out), "policy"))
    for name in names:
        if config.baseline_param is not None:
            spec = check_baseline(name, domain.name)
            contenders.append(
                baseline_contender(env_id, kwargs, name, spec, domain, config.baseline_param)
            )
        else:
            contenders += baseline_grid(env_id, kwargs, name, domain, config.grid_points)
    return contenders


def evaluate(config: EvaluateConfig) -> EvaluationReport:
    """Score the policy and the baselines; write tables and the plot; return the report."""
    check_positive_int("n-episodes", config.n_episodes)
    check_positive_int("grid-points", config.grid_points)
    if config.bisect_iters < 0:
        raise ConfigError(f"bisect-iters must be >= 0, got {config.bisect_iters}.")
    env_id, kwargs, policy = resolve_target(config)
    domain = domain_for(env_id)
    names = config.baselines if config.baselines is not None else domain.reference_baselines
    match = config.match if config.match is not None else domain.match_baseline
    matches = [m.strip() for m in match.split(",") if m.strip()] if match else []
    for name in (*names, *(matches if policy is not None else [])):
        check_baseline(name, domain.name)  # fail before any episode is run
    seeds = held_out_seeds(domain, config.seed, config.n_episodes)
    if config.pictures:
        check_renders(env_id, merged(kwargs, domain.held_out))
    contenders = build_contenders(config, env_id, kwargs, domain, policy, tuple(names))
    episodes = [row for c in contenders for row in evaluate_contender(env_id, c, domain, seeds)]
    report = EvaluationReport(
        default_out_dir(config, env_id, policy), summary_rows(episodes), episodes
    )
    for index, name in enumerate(matches if policy is not None else []):
        # a comma-separated match bisects each rule: [policy, rule 1, rule 2, ...]
        rows = matched_table(
            env_id, kwargs, name, domain, seeds, report.summaries[0], config.bisect_iters, episodes
        )
        report.matched += rows if index == 0 else rows[1:]
    write_report(report, domain, env_id)
    if policy is not None and config.step_plot:
        report.files.update(policy_step_plot(env_id, domain, contenders[0], report))
    if config.pictures:
        report.files.update(save_pictures(env_id, contenders, domain, seeds[0], report.out_dir))
    return report


def policy_step_plot(
    env_id: str, domain: Domain, mine: Contender, report: EvaluationReport
) -> dict[str, Path]:
    """steps.png/steps.csv: the policy's (``mine``) step against the step rule's (at its
    matched-cost parameter when the evaluation bisected it) on the first held-out start."""
    seed = int(report.episodes[0]["seed"])
    if STEP_PLOT_RULE not in BASELINES or BASELINES.get(STEP_PLOT_RULE).domain != domain.name:
        return {}
    spec = check_baseline(STEP_PLOT_RULE, domain.name)
    matched = [r for r in report.matched[1:] if str(r["controller"]).startswith(STEP_PLOT_RULE)]
    value = matched[0]["parameter"] if matched else None
    rule = baseline_contender(env_id, dict(mine.env_kwargs), STEP_PLOT_RULE, spec, domain, value)
    runs = {
        "policy": (contender_env(env_id, mine), mine.policy),
        rule.label: (contender_env(env_id, rule), rule.policy),
    }
    title = f"{env_id.split('/')[-1]}: step per decision on held-out start {seed}"
    return save_step_plot(runs, seed, report.out_dir, title)


def matched_table(
    env_id: str,
    kwargs: dict[str, Any],
    name: str,
    domain: Domain,
    seeds: list[int],
    policy_summary: dict[str, Any],
    iterations: int,
    episodes: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """[policy row, baseline row at matched median cost] with error ratios."""
    target = float(policy_summary["median_cost"])
    if not (math.isfinite(target) and target > 0):
        logger.warning("policy cost %s cannot be matched; skipping the comparison", target)
        return []
    done: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in episodes:
        if row["parameter"] is not None:
            done.setdefault((row["family"], row["parameter"]), []).append(row)
    summary, _rows = matched_cost(env_id, kwargs, name, domain, seeds, target, iterations, done)
    policy_row = {
        "controller": "policy",
        "parameter": None,
        "bracketed": True,
        **{k: policy_summary[k] for k in policy_summary if k not in ("controller",)},
    }
    out = []
    for row in (policy_row, summary):
        row = dict(row)
        row["cost_ratio"] = float(row["median_cost"]) / target
        row["error_ratio_vs_policy"] = (
            float(row["median_error"]) / float(policy_summary["median_error"])
            if float(policy_summary["median_error"] or math.nan) > 0
            else math.nan
        )
        out.append(row)
    return out


def default_out_dir(config: EvaluateConfig, env_id: str, policy: TrainedPolicy | None) -> Path:
    if config.out_dir is not None:
        return Path(config.out_dir)
    if policy is not None:
        return policy.run_dir / "evaluation"
    return Path("runs") / f"eval__{env_id.split('/')[-1]}__{int(time.time())}"


def write_report(report: EvaluationReport, domain: Domain, env_id: str) -> None:
    """episodes.csv, summary.csv, summary.md, matched.csv, pareto.png into ``report.out_dir``."""
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    report.files["episodes"] = write_csv(report.episodes, out / "episodes.csv")
    columns = summary_columns(report.summaries)
    report.files["summary_csv"] = write_csv(report.summaries, out / "summary.csv", columns)
    text = (
        f"# Evaluation on {env_id} (held-out instances)\n\n"
        f"error = {domain.error_label} (median/p90 over successful episodes), "
        f"cost = {domain.cost_label}; failures counted apart.\n\n"
        + markdown_table(report.summaries, columns)
    )
    if report.matched:
        report.files["matched_csv"] = write_csv(
            report.matched, out / "matched.csv", MATCHED_COLUMNS
        )
        text += "\n## Matched cost\n\n" + markdown_table(report.matched, MATCHED_COLUMNS)
    report.markdown = text
    (out / "summary.md").write_text(text)
    report.files["summary_md"] = out / "summary.md"
    report.files["pareto"] = pareto_plot(
        report.summaries,
        out / "pareto.png",
        domain.error_label,
        domain.cost_label,
        domain.log_error,
        title=f"{env_id}: error against cost",
    )


def list_baselines() -> list[tuple[str, str, str, str]]:
    """(name, domain, parameter, doc) of every registered baseline."""
    return [(n, s.domain, s.parameter or "-", s.doc) for n, s in BASELINES.items()]
