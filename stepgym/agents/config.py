"""Configs of the ``stepgym`` subcommands: frozen dataclasses, one docstring per field.

tyro turns each into a command line (``stepgym train --help`` lists every field with its
docstring); the same objects are used from Python, e.g. ``train(TrainConfig(seed=3))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro


@dataclass(frozen=True)
class TrainConfig:
    """Train an SB3 agent on a registered step-size environment."""

    env_id: str = "stepgym/ThreeBody-v0"
    """Registered Gymnasium id of the environment."""
    env_kwargs: str = "{}"
    """Environment keyword arguments as a JSON object, e.g. '{"integrator": "whfast"}'."""
    algo: Literal["ppo", "dqn", "recurrent_ppo"] = "ppo"
    """Training algorithm, a name in ``stepgym.agents.algorithms.ALGORITHM_SPECS``: 'ppo' (any
    action space), 'dqn' (discrete actions only) or 'recurrent_ppo' (sb3-contrib's
    RecurrentPPO with an LSTM policy: memory across decisions)."""
    total_timesteps: int = 50_000
    """Environment steps (decisions) to train for, summed over the parallel environments."""
    n_envs: int = 4
    """Parallel training environments."""
    vec_env: Literal["auto", "native", "dummy", "subproc"] = "auto"
    """'native' steps all environments in one call in this process (the env id's Gymnasium
    vector entry point, e.g. ThreeBody-v0's), 'dummy' one after the other through SB3's
    DummyVecEnv, 'subproc' one process each (the env id must be registered on import, as
    stepgym's are); 'auto' is 'native' where the env id has one, else 'dummy'."""
    seed: int = 0
    """Seed of everything: torch, numpy, the environments' instances."""
    exp_name: str = "ppo"
    """Experiment name, part of the run directory's name."""
    runs_dir: Path = Path("runs")
    """Where run directories <env>__<exp>__<seed>__<time> are created."""
    learning_rate: float = 3e-4
    """Optimizer learning rate of the agent."""
    n_steps: int = 256
    """PPO: steps per environment per rollout."""
    batch_size: int = 64
    """Minibatch size."""
    n_epochs: int = 10
    """PPO: optimisation epochs per rollout."""
    gamma: float = 0.99
    """Discount factor. Near 1 (e.g. 0.999) a decision is credited with nearly all the
    error it causes later in the episode, which a tail-aware reward (``terminal``, ``tail``)
    needs; pair it with ``reward_scale`` or ``norm_reward`` so that returns stay O(1)."""
    reward_scale: float = 1.0
    """Every training reward is multiplied by this before VecNormalize (evaluation scores
    the env's own reward). Useful with ``norm_reward=False`` and gamma near 1, where the
    discounted return sums ~1 / (1 - gamma) rewards."""
    gae_lambda: float = 0.95
    """PPO: GAE lambda."""
    ent_coef: float = 0.0
    """PPO: entropy bonus coefficient."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value networks."""
    frame_stack: int = 1
    """Observations the policy sees at once: the last k (SB3's VecFrameStack, oldest first,
    zeros before the episode's first); 1 means the current one only. Evaluation and
    transfer stack the same way."""
    lstm_hidden_size: int = 64
    """recurrent_ppo: size of the LSTM's hidden state (the policy's memory)."""
    log_std_init: float = 0.0
    """PPO with continuous actions: initial log standard deviation of the Gaussian policy
    (below 0 starts with less exploration noise, e.g. -1.5 for a spread of about 0.2 of the
    [-1, 1] action range)."""
    norm_obs: bool = True
    """Normalise observations with VecNormalize (statistics saved with every model)."""
    norm_reward: bool = True
    """Normalise rewards with VecNormalize during training."""
    eval_freq: int = 2_000
    """Evaluate on held-out instances every this many steps (summed over envs); 0 disables."""
    n_eval_episodes: int = 5
    """Held-out episodes per periodic evaluation."""
    checkpoint_freq: int = 10_000
    """Save a checkpoint every this many steps (summed over envs); 0 disables."""
    progress_bar: bool = True
    """Show a progress bar (tqdm + rich)."""
    torch_threads: int = 1
    """Torch CPU threads (small networks train fastest on one)."""
    verbose: int = 0
    """SB3 verbosity: 0 quiet, 1 info."""
    resume: Path | None = None
    """Continue this run directory from its latest checkpoint (model, VecNormalize statistics
    and step count) instead of starting a new run; its config.json gives every other setting
    (a --total-timesteps above the run's extends it)."""


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate a trained policy and/or baseline controllers on held-out instances."""

    policy: Path | None = None
    """Run directory (or a model .zip in it) from 'stepgym train'; omit to score baselines only."""
    use_best: bool = True
    """Load the best model kept by periodic evaluation (best/), if the run has one."""
    env_id: str | None = None
    """Environment id; defaults to the policy's training environment."""
    env_kwargs: str | None = None
    """Environment keyword arguments as JSON, applied over the policy's training ones (e.g.
    '{"horizon": 300}'); held-out overrides (e.g. split='test') are always applied."""
    baselines: tuple[str, ...] | None = None
    """Baseline controllers to score (see 'stepgym evaluate --list-baselines'); default: the
    environment's reference baselines. Parametrised ones are run over their grid."""
    baseline_param: float | None = None
    """Run a single parametrised baseline at this parameter instead of its grid."""
    grid_points: int = 5
    """Parameter values per parametrised baseline curve."""
    match: str | None = None
    """Parametrised baseline bisected to the policy's median cost; default: the environment's."""
    bisect_iters: int = 6
    """Bisection iterations (in log parameter space) of the matched-cost comparison."""
    n_episodes: int = 20
    """Held-out episodes per controller; episode i uses seed seed+offset+i."""
    seed: int = 0
    """Base seed of the held-out episodes."""
    out_dir: Path | None = None
    """Where tables and the plot go; default: <run>/evaluation or runs/eval__<env>__<time>."""
    list_baselines: bool = False
    """List the registered baselines and exit."""
    pictures: bool = False
    """Also save one episode's picture per controller (the env's rgb_array render of the first
    held-out episode) as pictures/<controller>.png in the output directory."""
    step_plot: bool = True
    """With a policy: also save steps.png and steps.csv, the step the policy chooses over its
    first held-out episode next to the timescale rule's (at the matched eta), close
    encounters marked (``stepgym.agents.step_plots``)."""
    trust: bool = False
    """Allow unpickling files of the run (only needed for runs saved without .npz statistics
    or with a network config.json does not describe). Unpickling runs any code stored in the
    file: use it only for runs whose origin you trust. Default: nothing is unpickled."""


@dataclass(frozen=True)
class TransferConfig:
    """Evaluate policies trained on one integrator/optimizer/model on others, no retraining."""

    policies: tuple[Path, ...] = ()
    """Run directories of the trained policies (rows of the table)."""
    targets: tuple[str, ...] = ()
    """Values of the transfer axis to evaluate on (columns), e.g. whfast leapfrog saba."""
    axis: str | None = None
    """Env keyword that varies (default: 'integrator' for ThreeBody, 'optimizer' otherwise)."""
    use_best: bool = True
    """Use each run's best model if it has one."""
    trust: bool = False
    """Allow unpickling files of the runs (see 'stepgym evaluate --help'); default: never."""
    n_episodes: int = 20
    """Held-out episodes per cell."""
    seed: int = 0
    """Base seed of the held-out episodes."""
    out_dir: Path = Path("runs/transfer")
    """Where transfer.md and transfer.csv go."""


@dataclass(frozen=True)
class QuickstartConfig:
    """Train a small PPO agent on ThreeBody-v0, then compare it with the fixed grid and the
    timescale rule on held-out instances."""

    env_id: str = "stepgym/ThreeBody-v0"
    """Environment id."""
    env_kwargs: str = (
        '{"integrator": "leapfrog", "step_mode": "timescale", "reward": "linear_cost", '
        '"cost_weight": 1.0, "raw_range": [0.0001, 0.1]}'
    )
    """Environment keyword arguments (JSON): leapfrog driven by the dimensionless step eta,
    where the timescale rule is the baseline to beat. The linear_cost reward has its optimum
    inside the eta range (the log-log default reward is linear in log eta for a 2nd-order
    scheme, so its optimum is a bound or flat over decades). raw_range only bounds the
    fixed-step grid (steps below 1e-4 take minutes per episode)."""
    total_timesteps: int = 800_000
    """PPO training steps (about 140 s of one core with the native vector env)."""
    n_envs: int = 8
    """Parallel training environments."""
    n_episodes: int = 30
    """Held-out evaluation episodes per controller (test split, the same starts for every
    controller)."""
    grid_points: int = 5
    """Parameter values per baseline curve, log-spaced over the baseline's range."""
    bisect_iters: int = 6
    """Bisection iterations of the matched-cost comparison."""
    seed: int = 0
    """Seed of training and evaluation."""
    runs_dir: Path = Path("runs")
    """Where the run directory is created."""
    horizon: float | None = None
    """Episode horizon passed to the env as ``horizon`` (ThreeBody: simulated time, default
    100 decision slices); smaller values make a faster, rougher quickstart."""
    progress_bar: bool = True
    """Show a progress bar during training."""


@dataclass(frozen=True)
class SweepConfig:
    """Train and evaluate many configurations and training seeds as Ray Tune trials, then
    report each configuration across its seeds with bootstrap 95% intervals."""

    train: TrainConfig = TrainConfig(progress_bar=False, checkpoint_freq=0)
    """The base training run every trial starts from (``--train.total-timesteps`` ...)."""
    grid: tuple[str, ...] = ("seed=0,1,2,3,4",)
    """Grid parameters NAME=V1,V2,...: TrainConfig fields (seed, learning_rate, algo, ...)
    or env keywords written env.NAME (env.cost_weight, env.integrator, env.reward)."""
    random: tuple[str, ...] = ()
    """Random parameters NAME=loguniform:LOW:HIGH, uniform:LOW:HIGH, randint:LOW:HIGH or
    choice:V1,V2; each draw is shared by every training seed."""
    num_samples: int = 1
    """Random draws per grid point (with --random)."""
    search_seed: int = 0
    """Seed of the random draws."""
    name: str = "sweep"
    """Name of the sweep: its directory under --out-dir."""
    out_dir: Path = Path("runs/sweeps")
    """Where the sweep directory goes (trials/, runs/, report.md, report.csv, ratio.png)."""
    n_episodes: int = 20
    """Held-out evaluation episodes per trial."""
    eval_seed: int = 0
    """Base seed of the held-out episodes (the same episodes for every trial)."""
    match: str | None = None
    """Reference rule bisected to each policy's median cost (default: the env's)."""
    bisect_iters: int = 6
    """Bisection iterations of the matched-cost comparison."""
    address: str | None = None
    """Address of a running Ray cluster (default: $RAY_ADDRESS, else a local Ray on this
    machine's cores)."""
    num_cpus: int | None = None
    """CPUs of the local Ray (default: all of this machine's)."""
    cpus_per_trial: float = 1.0
    """CPUs reserved per trial."""
    max_concurrent: int = 0
    """Trials at once (0: as many as the CPUs allow)."""
    object_store_mb: int = 150
    """Object store of the local Ray in MB (trials pass only small dicts)."""
    scheduler: Literal["none", "asha"] = "none"
    """'asha' stops trials early whose periodic held-out return ('eval_return', reported at
    every --train.eval-freq) lags the others; stopped trials are reported as such."""
    metric: str = "eval_return"
    """Metric the scheduler compares trials on; ASHA needs 'eval_return' (the periodic
    held-out return, the only figure a trial reports while it trains)."""
    mode: Literal["min", "max"] = "max"
    """Whether --metric is minimised or maximised."""
    n_bootstrap: int = 2000
    """Bootstrap resamples of the intervals."""


@dataclass(frozen=True)
class ReproduceConfig:
    """Reproduce a seed paper's figure: print ours next to the paper's and write
    results/<NAME>.md (command, seeds, settings, table, plot)."""

    name: tyro.conf.Positional[str | None] = None
    """The target (see --list)."""
    list: bool = False
    """List the targets and exit."""
    quick: bool = False
    """A small size of the target (seconds to a minute), for tests and smoke runs."""
    seeds: int | None = None
    """Training seeds (default: the target's, 5 for the learning targets)."""
    out_dir: Path = Path("results")
    """Where <NAME>.md and its plot go."""
    work_dir: Path = Path("runs/reproduce")
    """Where sweeps and other intermediate files go."""
    num_cpus: int | None = None
    """CPUs of the local Ray, for targets that sweep."""
