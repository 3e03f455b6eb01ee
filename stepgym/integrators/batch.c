/* One call that advances N REBOUND simulations under a per-step rule (stepgym's vector env).
 *
 * Built by stepgym/integrators/batch.py with the system C compiler. It includes step_rules.c,
 * so each copy's advance is exactly the single environment's compiled advance
 * (stepgym_advance: the rule in REBOUND's heartbeat, budgets checked in C); around it this file
 * does per copy what ReboundPropagator._advance and the environment's observation do in
 * Python: reset the budget counter, count steps and evaluations, and read the time, the last
 * step, the energy, t_dyn and the smallest separation into one row of `out`. Extra macros
 * (besides step_rules.c's): SIM_EXTRAS SIM_MESSAGES SIM_DT_LAST_DONE (offsets in
 * struct reb_simulation).
 *
 * It also exports libm's log10 and pow over arrays: Python's math.log10 and float ** call the
 * same libm functions, whereas NumPy's SIMD versions may differ in the last bit, so batched
 * features and rewards keep the single environment's bits.
 */
#include "step_rules.c"

#include <signal.h>

/* Rows of `out` (each n doubles, one per copy; column-major so that a row is an array of the
 * copies' values), shared with batch.py. The last three accumulate over an episode. */
enum {
    OUT_CODE,        /* SG_* or a positive REBOUND status */
    OUT_STEPS,       /* steps taken */
    OUT_EVALS,       /* force evaluations (counted, or steps x per step) */
    OUT_STOPPED,     /* the counter's stopped flag (budget) */
    OUT_T,           /* simulated time after the advance */
    OUT_DT_LAST,     /* REBOUND's dt_last_done */
    OUT_ENERGY,      /* total energy */
    OUT_T_DYN,       /* t_dyn */
    OUT_MIN_SEP,     /* smallest pair distance */
    OUT_MESSAGES,    /* 1 if REBOUND's message queue exists (it may hold messages) */
    OUT_WALL,        /* wall-clock seconds of the advance */
    OUT_ERROR,       /* relative energy error |E - E0| / |E0| (inf if not finite) */
    OUT_LOG_ERROR,   /* log10 of it floored, 300 if not finite (records.log_error) */
    OUT_ADVANCED,    /* 1 if the clock advanced (or, in slice mode, had already passed t_end) */
    OUT_UNUSUAL,     /* 1 if the decision may end the episode or needs Python: a status other
                        than done, a budget stop, messages, a non-finite clock, the energy
                        limit passed, no advance, the horizon reached (the caller decides) */
    OUT_LOG_BEFORE,  /* OUT_LOG_ERROR before the advance */
    OUT_DELTA,       /* OUT_LOG_ERROR - OUT_LOG_BEFORE */
    OUT_LAST_ACTION, /* the request's value as a unit action (LogActionMap.to_unit) */
    OUT_PROGRESS,    /* min(1, t / horizon) */
    OUT_COST,        /* evaluations since reset */
    OUT_STEPS_TOTAL, /* steps since reset */
    OUT_WALL_TOTAL,  /* wall-clock seconds since reset */
    OUT_LOG_T_DYN,   /* log10 t_dyn (-inf at or below 0), the log_timescale feature */
    OUT_LOG_MIN_SEP, /* log10 of the smallest separation, the log_min_separation feature */
    OUT_LOG_STEP,    /* log10 (last step / t_dyn), -12 before a step: log_step_over_timescale */
    OUT_SIZE
};
/* The parameters of one call (doubles), shared with batch.py. */
enum {
    PARAM_EVALUATIONS, /* evaluation budget per advance */
    PARAM_WALL,        /* wall-clock budget per advance (s) */
    PARAM_ERROR_FLOOR, /* floor of the logged energy error */
    PARAM_ERROR_LIMIT, /* energy error that flags a copy */
    PARAM_HORIZON_MARK, /* time that flags a copy (the horizon less round-off) */
    PARAM_HORIZON,     /* horizon (progress) */
    PARAM_LOG_LOW,     /* log10 of the smallest setting (to_unit) */
    PARAM_LOG_SPAN     /* log10 of the largest setting minus PARAM_LOG_LOW */
};

typedef double (*energy_fn_t)(void*);
static energy_fn_t reb_energy = 0;

void stepgym_batch_set_energy(void* fn) { reb_energy = (energy_fn_t)fn; }

/* Python's min(first, second) and max(first, second) (first unless second is smaller/larger). */
static inline double py_min(double first, double second) { return second < first ? second : first; }
static inline double py_max(double first, double second) { return second > first ? second : first; }

/* What one copy's advance was asked: its setting (value) and, in slice mode, its end. */
struct ask {
    double value;
    double t_end;
    int slice; /* 1: an advance to t_end (a copy already past it advanced) */
};

/* The features' log10: x > 0 ? log10(x) : -inf, as threebody.features' _log10. */
static inline double log_or_minus_inf(double x) { return x > 0.0 ? log10(x) : -INFINITY; }

/* log10 (step / t_dyn), -12 before the first step (step not > 0), t_dyn <= 0 as an infinite
 * ratio: threebody.features' _log_step_over_timescale, same operations. */
static inline double log_step_over(double step, double t_dyn) {
    if (!(step > 0.0)) return -12.0;
    return log_or_minus_inf(t_dyn > 0.0 ? step / t_dyn : INFINITY);
}

/* Everything the environment records after copy i's advance (ThreeBodyEnv._propagate's
 * arithmetic, the same operations in the same order), into the rows of `out`. */
static void finish(size_t n, size_t i, char* sim, int code, uint64_t steps0, double t_before,
                   const double* counter, double per_step, struct ask ask, const double* params,
                   double energy0, double start, double* out) {
#define O(k) out[(size_t)(k) * n + i]
    const uint64_t steps = AT(sim, uint64_t, SIM_STEPS_DONE) - steps0;
    const double t = AT(sim, double, SIM_T);
    const double dt_last = AT(sim, double, SIM_DT_LAST_DONE);
    O(OUT_CODE) = (double)code;
    O(OUT_STEPS) = (double)steps;
    O(OUT_EVALS) = per_step > 0.0 ? (double)steps * per_step : counter[CT_COUNT];
    O(OUT_STOPPED) = counter[CT_STOPPED];
    O(OUT_T) = t;
    O(OUT_DT_LAST) = dt_last;
    O(OUT_ENERGY) = reb_energy(sim);
    double observed[2];
    stepgym_timescale_and_separation(sim, observed);
    O(OUT_T_DYN) = observed[0];
    O(OUT_MIN_SEP) = observed[1];
    O(OUT_MESSAGES) = AT(sim, void*, SIM_MESSAGES) != 0;
    const double error_raw = fabs((O(OUT_ENERGY) - energy0) / energy0);
    const double error = isfinite(error_raw) ? error_raw : INFINITY;
    O(OUT_ERROR) = error;
    O(OUT_LOG_BEFORE) = O(OUT_LOG_ERROR);
    O(OUT_LOG_ERROR) =
        isfinite(error) ? log10(py_max(error, params[PARAM_ERROR_FLOOR])) : 300.0;
    O(OUT_DELTA) = O(OUT_LOG_ERROR) - O(OUT_LOG_BEFORE);
    const double unit = 2.0 * (log10(ask.value) - params[PARAM_LOG_LOW]) /
                            params[PARAM_LOG_SPAN] - 1.0;
    O(OUT_LAST_ACTION) = py_min(1.0, py_max(-1.0, unit));
    O(OUT_PROGRESS) = py_min(1.0, t / params[PARAM_HORIZON]);
    const int advanced = t > t_before || (ask.slice && t >= ask.t_end);
    O(OUT_ADVANCED) = advanced;
    O(OUT_UNUSUAL) = (code != SG_DONE && code != REB_USER_STOP) || counter[CT_STOPPED] != 0.0 ||
                     O(OUT_MESSAGES) != 0.0 || !isfinite(t + dt_last) ||
                     !(error <= params[PARAM_ERROR_LIMIT]) || !advanced ||
                     t >= params[PARAM_HORIZON_MARK];
    O(OUT_COST) += O(OUT_EVALS);
    O(OUT_STEPS_TOTAL) += O(OUT_STEPS);
    O(OUT_WALL) = start > 0.0 ? monotonic_now() - start : 0.0;
    O(OUT_WALL_TOTAL) += O(OUT_WALL);
    O(OUT_LOG_T_DYN) = log_or_minus_inf(observed[0]);
    O(OUT_LOG_MIN_SEP) = log_or_minus_inf(observed[1]);
    O(OUT_LOG_STEP) = log_step_over(dt_last, observed[0]);
#undef O
}

/* The budget counter of an advance: the force counter's (sim->extras) when the scheme counts
 * its evaluations, else `own`; reset for a new advance started at `start`. */
static double* start_counter(char* sim, double* own, const double* params, double start) {
    double* counter = AT(sim, double*, SIM_EXTRAS);
    if (!counter) counter = own;
    counter[CT_COUNT] = 0.0;
    counter[CT_LIMIT] = params[PARAM_EVALUATIONS];
    counter[CT_STOPPED] = 0.0;
    counter[CT_DEADLINE] = start + params[PARAM_WALL];
    return counter;
}

/* Advance copy i of n (sims[i] == 0: skip it) under the rule with request row i; energy0[i]
 * is its energy at reset. */
void stepgym_batch_advance(size_t n, char** sims, const double* requests, double* counters,
                           double** caps, void* scale, const double* params,
                           const double* energy0, double* out) {
    for (size_t i = 0; i < n; i++) {
        char* sim = sims[i];
        if (!sim) continue;
        const double* request = requests + i * RQ_SIZE;
        const double start = monotonic_now();
        double* counter = start_counter(sim, counters + i * 4, params, start);
        const uint64_t steps0 = AT(sim, uint64_t, SIM_STEPS_DONE);
        const double t_before = AT(sim, double, SIM_T);
        const int code = stepgym_advance(sim, request, counter, caps[i], scale);
        const struct ask ask = {request[RQ_VALUE], request[RQ_T_END], request[RQ_FINE] == 0.0};
        finish(n, i, sim, code, steps0, t_before, counter, request[RQ_PER_STEP], ask, params,
               energy0[i], start, out);
    }
}

typedef int (*integrate_fn_t)(void*, double);
static integrate_fn_t reb_integrate = 0;

void stepgym_batch_set_integrate(void* fn) { reb_integrate = (integrate_fn_t)fn; }

/* Integrate copy i of n (sims[i] == 0: skip it) to t_ends[i] with its scheme's own steps
 * (the raw setting values[i] already applied), REBOUND's exact_finish_time = exact; with
 * exact == 0 a copy whose last step already passed t_ends[i] is not integrated (no work), as
 * ReboundPropagator.advance_raw_to. The force counter (sim->extras) counts the work. */
void stepgym_batch_integrate(size_t n, char** sims, const double* values, const double* t_ends,
                             double* counters, int exact, const double* params,
                             const double* energy0, double* out) {
    for (size_t i = 0; i < n; i++) {
        char* sim = sims[i];
        if (!sim) continue;
        const struct ask ask = {values[i], t_ends[i], 1};
        const uint64_t steps0 = AT(sim, uint64_t, SIM_STEPS_DONE);
        const double t_before = AT(sim, double, SIM_T);
        if (!exact && t_before >= t_ends[i]) { /* nothing to do: no work, no budget */
            const double idle[4] = {0.0, 0.0, 0.0, 0.0};
            finish(n, i, sim, SG_DONE, steps0, t_before, idle, 0.0, ask, params, energy0[i],
                   0.0, out);
            continue;
        }
        const double start = monotonic_now();
        double* counter = start_counter(sim, counters + i * 4, params, start);
        AT(sim, int, SIM_EXACT_FINISH_TIME) = exact;
        const int code = reb_integrate(sim, t_ends[i]);
        finish(n, i, sim, code, steps0, t_before, counter, 0.0, ask, params, energy0[i], start,
               out);
    }
}

/* The arguments of one batched call, set once by batch.py: a call then passes one pointer
 * (ctypes converts every argument on every call, ~0.2 us each; a single environment makes
 * one call per decision). Layout shared with batch.py (_FRAME_FIELDS). */
struct frame {
    size_t n;
    char** sims;
    const double* requests;
    double* counters;
    double** caps;
    void* scale;
    const double* params;
    const double* energy0;
    double* out;
    const double* values;
    const double* t_ends;
    size_t exact;
};

/* stepgym_batch_advance with the frame's arguments. */
void stepgym_frame_advance(const struct frame* f) {
    stepgym_batch_advance(f->n, f->sims, f->requests, f->counters, f->caps, f->scale, f->params,
                          f->energy0, f->out);
}

/* stepgym_batch_integrate with the frame's arguments. REBOUND installs its own SIGINT handler
 * on every integrate and never puts the previous one back (Python's, which makes Ctrl-C raise
 * KeyboardInterrupt): the handler in place before the call is restored after it. */
void stepgym_frame_integrate(const struct frame* f) {
    struct sigaction saved;
    const int have = sigaction(SIGINT, 0, &saved) == 0;
    stepgym_batch_integrate(f->n, f->sims, f->values, f->t_ends, f->counters, (int)f->exact,
                            f->params, f->energy0, f->out);
    if (have) sigaction(SIGINT, &saved, 0);
}

/* out[i] = log10(x[i]) for x[i] > 0, else -inf (NaN included), as math.log10 on positives. */
void stepgym_log10_each(size_t n, const double* x, double* out) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0 ? log10(x[i]) : -INFINITY;
}

/* out[i] = the setting of the continuous action unit[i] (LogActionMap.from_unit: clipped to
 * [-1, 1], then 10 ** (log_low + (u + 1) * 0.5 * log_span); same operations, same order). */
void stepgym_from_unit_each(size_t n, const double* unit, double log_low, double log_span,
                            double* out) {
    for (size_t i = 0; i < n; i++) {
        const double u = py_min(1.0, py_max(-1.0, unit[i]));
        out[i] = pow(10.0, log_low + (u + 1.0) * 0.5 * log_span);
    }
}

/* out[i] = pow(base, x[i]), as Python's base ** x for finite floats. */
void stepgym_pow_each(size_t n, double base, const double* x, double* out) {
    for (size_t i = 0; i < n; i++) out[i] = pow(base, x[i]);
}
