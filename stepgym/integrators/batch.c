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

/* Row layout of `out`, shared with batch.py. */
enum {
    OUT_CODE,     /* SG_* or a positive REBOUND status */
    OUT_STEPS,    /* steps taken */
    OUT_EVALS,    /* force evaluations (counted, or steps x per step) */
    OUT_STOPPED,  /* the counter's stopped flag (budget) */
    OUT_T,        /* simulated time after the advance */
    OUT_DT_LAST,  /* REBOUND's dt_last_done */
    OUT_ENERGY,   /* total energy */
    OUT_T_DYN,    /* t_dyn */
    OUT_MIN_SEP,  /* smallest pair distance */
    OUT_MESSAGES, /* 1 if REBOUND's message queue exists (it may hold messages) */
    OUT_WALL,     /* wall-clock seconds of the advance */
    OUT_ERROR,    /* relative energy error |E - E0| / |E0| (inf if not finite) */
    OUT_LOG_ERROR, /* log10 of it floored, 300 if not finite (records.log_error) */
    OUT_ADVANCED, /* 1 if the clock advanced (or, in slice mode, had already passed t_end) */
    OUT_UNUSUAL,  /* 1 if the decision may end the episode or needs Python: a status other than
                     done, a budget stop, messages, a non-finite clock, the energy limit
                     passed, no advance, the horizon reached (the caller decides which) */
    OUT_SIZE
};
/* The parameters of one call (doubles), shared with batch.py. */
enum { PARAM_EVALUATIONS, PARAM_WALL, PARAM_ERROR_FLOOR, PARAM_ERROR_LIMIT, PARAM_HORIZON };

typedef double (*energy_fn_t)(void*);
static energy_fn_t reb_energy = 0;

void stepgym_batch_set_energy(void* fn) { reb_energy = (energy_fn_t)fn; }

/* Advance copy i of n (sims[i] == 0: skip it) with request row i; energy0[i] is its energy
 * at reset. The counter is the one the force-counting callback uses (sim->extras) when the
 * scheme counts its evaluations, else row i of `counters`. */
void stepgym_batch_advance(size_t n, char** sims, const double* requests, double* counters,
                           double** caps, void* scale, const double* params,
                           const double* energy0, double* out) {
    for (size_t i = 0; i < n; i++) {
        char* sim = sims[i];
        if (!sim) continue;
        const double* request = requests + i * RQ_SIZE;
        double* counter = AT(sim, double*, SIM_EXTRAS);
        if (!counter) counter = counters + i * 4;
        const double start = monotonic_now();
        counter[CT_COUNT] = 0.0;
        counter[CT_LIMIT] = params[PARAM_EVALUATIONS];
        counter[CT_STOPPED] = 0.0;
        counter[CT_DEADLINE] = start + params[PARAM_WALL];
        const uint64_t steps0 = AT(sim, uint64_t, SIM_STEPS_DONE);
        const double t_before = AT(sim, double, SIM_T);
        const int code = stepgym_advance(sim, request, counter, caps[i], scale);
        const uint64_t steps = AT(sim, uint64_t, SIM_STEPS_DONE) - steps0;
        const double per_step = request[RQ_PER_STEP];
        double* row = out + i * OUT_SIZE;
        row[OUT_CODE] = (double)code;
        row[OUT_STEPS] = (double)steps;
        row[OUT_EVALS] = per_step > 0.0 ? (double)steps * per_step : counter[CT_COUNT];
        row[OUT_STOPPED] = counter[CT_STOPPED];
        const double t = AT(sim, double, SIM_T);
        const double dt_last = AT(sim, double, SIM_DT_LAST_DONE);
        row[OUT_T] = t;
        row[OUT_DT_LAST] = dt_last;
        const double energy = reb_energy(sim);
        double error = fabs((energy - energy0[i]) / energy0[i]);
        if (!isfinite(error)) error = INFINITY;
        row[OUT_ENERGY] = energy;
        row[OUT_ERROR] = error;
        const double floor = params[PARAM_ERROR_FLOOR];
        row[OUT_LOG_ERROR] = isfinite(error) ? log10(error < floor ? floor : error) : 300.0;
        stepgym_timescale_and_separation(sim, row + OUT_T_DYN);
        row[OUT_MESSAGES] = AT(sim, void*, SIM_MESSAGES) != 0;
        const int advanced = t > t_before || (request[RQ_FINE] == 0.0 && t >= request[RQ_T_END]);
        row[OUT_ADVANCED] = advanced;
        row[OUT_UNUSUAL] = (code != SG_DONE && code != REB_USER_STOP) ||
                           counter[CT_STOPPED] != 0.0 || row[OUT_MESSAGES] != 0.0 ||
                           !isfinite(t + dt_last) || !(error <= params[PARAM_ERROR_LIMIT]) ||
                           !advanced || t >= params[PARAM_HORIZON];
        row[OUT_WALL] = monotonic_now() - start;
    }
}

/* out[i] = log10(x[i]) for x[i] > 0, else -inf (NaN included), as math.log10 on positives. */
void stepgym_log10_each(size_t n, const double* x, double* out) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0 ? log10(x[i]) : -INFINITY;
}

/* out[i] = pow(base, x[i]), as Python's base ** x for finite floats. */
void stepgym_pow_each(size_t n, double base, const double* x, double* out) {
    for (size_t i = 0; i < n; i++) out[i] = pow(base, x[i]);
}
