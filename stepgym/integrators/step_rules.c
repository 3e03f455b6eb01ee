/* Per-step rules of stepgym, run from REBOUND's heartbeat inside one reb_simulation_steps call.
 *
 * Built by stepgym/integrators/step_rules.py with the system C compiler. REBOUND's structs are
 * read through byte offsets passed as -D macros (taken from REBOUND's ctypes definitions), so
 * no REBOUND header is needed:
 *   SIM_T SIM_G SIM_DT SIM_STEPS_DONE SIM_N SIM_PARTICLES      offsets in struct reb_simulation
 *   SIM_STATUS SIM_HEARTBEAT
 *   PARTICLE_SIZE P_X P_VX P_M                                  size and offsets of reb_particle
 *
 * A rule maps the particle state (and the value, which only the time-symmetrised rule reads) to
 * a time scale; the step is value * scale. Adding a rule is one function here,
 * `double stepgym_rule_<name>(const char* sim, double value)`, plus its entry (with the Python
 * reference) in STEP_RULES. Every rule must do the same floating-point operations, in
 * the same order, as its Python reference, so the two paths give the same trajectory.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__has_include)
#if __has_include("rho_t.h")
#include "rho_t.h"
#define STEPGYM_HAVE_RHO_T 1
#endif
#endif

#define AT(base, type, offset) (*(type*)((char*)(base) + (offset)))

/* Result codes of stepgym_advance; positive values are REBOUND's own status codes. */
enum { SG_DONE = 0, SG_BUDGET = -1, SG_CLOCK_STOPPED = -2, SG_BAD_STEP = -3, SG_RUNNING = -9 };
enum { REB_USER_STOP = 5 };
/* Request layout (doubles), shared with step_rules.py. */
enum { RQ_FINE, RQ_VALUE, RQ_T_END, RQ_N_STEPS, RQ_RETIME_EVERY, RQ_PER_STEP, RQ_SIZE };
/* Counter layout, shared with force_counter.py: evaluations, limit, stopped flag, deadline. */
enum { CT_COUNT, CT_LIMIT, CT_STOPPED, CT_DEADLINE };
#define CLOCK_EVERY 16 /* loop passes between wall-clock reads */

typedef int (*steps_fn_t)(void*, size_t);
typedef double (*scale_fn_t)(const char*, double);
typedef void (*heartbeat_fn_t)(char*);

static steps_fn_t reb_steps = 0;

void stepgym_set_steps(void* fn) { reb_steps = (steps_fn_t)fn; }

static const double* particle(const char* sim, size_t i) {
    const char* particles = AT(sim, const char*, SIM_PARTICLES);
    return (const double*)(particles + i * PARTICLE_SIZE);
}

#define PX(p) ((p)[P_X / 8])
#define PV(p) ((p)[P_VX / 8])
#define PM(p) ((p)[P_M / 8])

/* |a - b|^2 of two 3-vectors, summed in x, y, z order (as timescales._distance2). */
static inline double distance2(const double* a, const double* b) {
    const double dx = a[0] - b[0];
    const double dy = a[1] - b[1];
    const double dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* Over pairs, the smallest squared free-fall time r^3 / (G (m_i + m_j)) and the smallest
 * squared distance: the pair arithmetic the timescale, observation and crossing share
 * (same operations, same order as the Python references). */
static inline void pair_minima(const char* sim, double* t2_min, double* r2_min) {
    const size_t n = AT(sim, size_t, SIM_N);
    const double G = AT(sim, double, SIM_G);
    *t2_min = INFINITY;
    *r2_min = INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double* a = particle(sim, i);
        for (size_t j = i + 1; j < n; j++) {
            const double* b = particle(sim, j);
            const double r2 = distance2(&PX(a), &PX(b));
            const double t2 = r2 * sqrt(r2) / (G * (PM(a) + PM(b)));
            if (t2 < *t2_min) *t2_min = t2;
            if (r2 < *r2_min) *r2_min = r2;
        }
    }
}

/* t_dyn = min over pairs of sqrt(r^3 / (G (m_i + m_j))), as ParticleView.timescale. */
static double sg_t_dyn(const char* sim) {
    double t2_min, r2_min;
    pair_minima(sim, &t2_min, &r2_min);
    return sqrt(t2_min);
}

double stepgym_rule_timescale(const char* sim, double value) {
    (void)value;
    return sg_t_dyn(sim);
}

/* Observation: out[0] = t_dyn, out[1] = smallest pair distance (ParticleView's
 * timescale_and_separation, same arithmetic). */
void stepgym_timescale_and_separation(const char* sim, double* out) {
    double t2_min, r2_min;
    pair_minima(sim, &t2_min, &r2_min);
    out[0] = sqrt(t2_min);
    out[1] = sqrt(r2_min);
}

/* Crossing time: min(t_dyn, min over pairs of r_ij / |v_ij|), as timescales.crossing_timescale. */
double stepgym_rule_crossing(const char* sim, double value) {
    (void)value;
    const size_t n = AT(sim, size_t, SIM_N);
    double t2_min, r2_min;
    pair_minima(sim, &t2_min, &r2_min);
    for (size_t i = 0; i < n; i++) {
        const double* a = particle(sim, i);
        for (size_t j = i + 1; j < n; j++) {
            const double* b = particle(sim, j);
            const double v2 = distance2(&PV(a), &PV(b));
            if (v2 > 0.0) {
                const double c2 = distance2(&PX(a), &PX(b)) / v2;
                if (c2 < t2_min) t2_min = c2;
            }
        }
    }
    return sqrt(t2_min);
}

#define SG_MAX_BODIES 64
/* A pair's r = x_j - x_i, w = v_j - v_i, r^2, 1 / r^3 and alpha = r.w / r^2: what both
 * passes of sg_derivatives start from (as timescales._pair). */
typedef struct {
    double r[3], w[3], r2, inv3, alpha;
} sg_pair;

static inline sg_pair sg_pair_of(const double* pi, const double* pj) {
    sg_pair p;
    for (int k = 0; k < 3; k++) {
        p.r[k] = (&PX(pj))[k] - (&PX(pi))[k];
        p.w[k] = (&PV(pj))[k] - (&PV(pi))[k];
    }
    p.r2 = p.r[0] * p.r[0] + p.r[1] * p.r[1] + p.r[2] * p.r[2];
    p.inv3 = 1.0 / (p.r2 * sqrt(p.r2));
    p.alpha = (p.r[0] * p.w[0] + p.r[1] * p.w[1] + p.r[2] * p.w[2]) / p.r2;
    return p;
}

/* Accelerations, jerks and snaps of every body (Hermite derivatives), as
 * timescales._derivatives: same operations, same order. */
static void sg_derivatives(const char* sim, size_t n, double G, double (*acc)[3],
                           double (*jerk)[3], double (*snap)[3]) {
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) acc[i][k] = jerk[i][k] = snap[i][k] = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double* pi = particle(sim, i);
        for (size_t j = i + 1; j < n; j++) {
            const double* pj = particle(sim, j);
            const sg_pair p = sg_pair_of(pi, pj);
            const double gi = G * PM(pj), gj = G * PM(pi);
            for (int k = 0; k < 3; k++) {
                const double a_k = p.r[k] * p.inv3;
                const double j_k = p.w[k] * p.inv3 - 3.0 * p.alpha * a_k;
                acc[i][k] += gi * a_k;
                acc[j][k] -= gj * a_k;
                jerk[i][k] += gi * j_k;
                jerk[j][k] -= gj * j_k;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        const double* pi = particle(sim, i);
        for (size_t j = i + 1; j < n; j++) {
            const double* pj = particle(sim, j);
            const sg_pair p = sg_pair_of(pi, pj);
            double da[3];
            for (int k = 0; k < 3; k++) da[k] = acc[j][k] - acc[i][k];
            const double* r = p.r;
            const double* w = p.w;
            const double beta = ((w[0] * w[0] + w[1] * w[1] + w[2] * w[2]) +
                                 (r[0] * da[0] + r[1] * da[1] + r[2] * da[2])) / p.r2 +
                                p.alpha * p.alpha;
            const double gi = G * PM(pj), gj = G * PM(pi);
            for (int k = 0; k < 3; k++) {
                const double a_k = r[k] * p.inv3;
                const double j_k = w[k] * p.inv3 - 3.0 * p.alpha * a_k;
                const double s_k = da[k] * p.inv3 - 6.0 * p.alpha * j_k - 3.0 * beta * a_k;
                snap[i][k] += gi * s_k;
                snap[j][k] -= gj * s_k;
            }
        }
    }
}

/* Jerk/snap time scale (after REBOUND's PRS23 criterion for IAS15):
 * min over bodies of sqrt(2 |a|^2 / (|jerk|^2 + |a| |snap|)); t_dyn when no body has one. */
double stepgym_rule_jerk(const char* sim, double value) {
    (void)value;
    const size_t n = AT(sim, size_t, SIM_N);
    const double G = AT(sim, double, SIM_G);
    if (n > SG_MAX_BODIES) return NAN; /* ends the advance as a bad step */
    double acc[SG_MAX_BODIES][3], jerk[SG_MAX_BODIES][3], snap[SG_MAX_BODIES][3];
    sg_derivatives(sim, n, G, acc, jerk, snap);
    double tau2_min = INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double* a = acc[i];
        const double* j = jerk[i];
        const double* s = snap[i];
        const double y2 = a[0] * a[0] + a[1] * a[1] + a[2] * a[2];
        const double y3 = j[0] * j[0] + j[1] * j[1] + j[2] * j[2];
        const double y4 = s[0] * s[0] + s[1] * s[1] + s[2] * s[2];
        const double denominator = y3 + sqrt(y4 * y2);
        if (denominator > 0.0) {
            const double tau2 = 2.0 * y2 / denominator;
            if (0.0 < tau2 && tau2 < tau2_min) tau2_min = tau2;
        }
    }
    if (!(tau2_min < INFINITY)) return sg_t_dyn(sim);
    return sqrt(tau2_min);
}

/* Fixed-point iterations after the first trial step; timescales.SYMMETRIC_CORRECTIONS. */
#define SG_SYMMETRIC_CORRECTIONS 0

/* Over pairs, the smallest r^3 / (G (m_i + m_j)) (returned) and the pairwise Newtonian
 * accelerations, in one pass, as timescales._free_fall2_and_accelerations. */
static double sg_free_fall2_and_accelerations(size_t n, double G, const double (*x)[3],
                                              const double* m, double (*acc)[3]) {
    double t2_min = INFINITY;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) acc[i][k] = 0.0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            double r[3];
            for (int k = 0; k < 3; k++) r[k] = x[j][k] - x[i][k];
            const double r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
            const double r3 = r2 * sqrt(r2);
            const double t2 = r3 / (G * (m[i] + m[j]));
            if (t2 < t2_min) t2_min = t2;
            const double inv3 = 1.0 / r3;
            const double gi = G * m[j], gj = G * m[i];
            for (int k = 0; k < 3; k++) {
                const double a_k = r[k] * inv3;
                acc[i][k] += gi * a_k;
                acc[j][k] -= gj * a_k;
            }
        }
    }
    return t2_min;
}

/* min over pairs of r^3 / (G (m_i + m_j)) of positions x, as timescales._free_fall2. */
static double sg_free_fall2(size_t n, double G, const double (*x)[3], const double* m) {
    double t2_min = INFINITY;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            const double r2 = distance2(x[i], x[j]);
            const double t2 = r2 * sqrt(r2) / (G * (m[i] + m[j]));
            if (t2 < t2_min) t2_min = t2;
        }
    }
    return t2_min;
}

/* Time-symmetrised scale (explicit Hut-Makino-Funato): (t_dyn(x) + t_dyn(x')) / 2 with x' the
 * Taylor prediction x + v dt + a dt^2 / 2 a step dt = value * scale ahead, scale starting at
 * t_dyn(x); as timescales.symmetric_timescale. */
double stepgym_rule_symmetric(const char* sim, double value) {
    const size_t n = AT(sim, size_t, SIM_N);
    const double G = AT(sim, double, SIM_G);
    if (n > SG_MAX_BODIES) return NAN; /* ends the advance as a bad step */
    double x[SG_MAX_BODIES][3], v[SG_MAX_BODIES][3], m[SG_MAX_BODIES];
    double acc[SG_MAX_BODIES][3], predicted[SG_MAX_BODIES][3];
    for (size_t i = 0; i < n; i++) {
        const double* p = particle(sim, i);
        for (int k = 0; k < 3; k++) {
            x[i][k] = (&PX(p))[k];
            v[i][k] = (&PV(p))[k];
        }
        m[i] = PM(p);
    }
    const double t2 = sg_free_fall2_and_accelerations(n, G, (const double(*)[3])x, m, acc);
    const double tau = sqrt(t2);
    if (!(tau > 0.0)) return tau; /* a coincident pair (0) or a non-finite state: t_dyn's value */
    double scale = tau;
    for (int pass = 0; pass <= SG_SYMMETRIC_CORRECTIONS; pass++) {
        const double dt = value * scale;
        const double half = 0.5 * dt * dt;
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                predicted[i][k] = x[i][k] + v[i][k] * dt + acc[i][k] * half;
        scale = 0.5 * (tau + sqrt(sg_free_fall2(n, G, (const double(*)[3])predicted, m)));
    }
    return scale;
}

#ifdef STEPGYM_HAVE_RHO_T
/* rho_t = min over pairs of the pair's time-domain radius (capped at 1/n), see rho_t.h. */
double stepgym_rho_t_system(const char* sim) {
    const size_t n = AT(sim, size_t, SIM_N);
    const double G = AT(sim, double, SIM_G);
    double rho_min = INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double* a = particle(sim, i);
        for (size_t j = i + 1; j < n; j++) {
            const double* b = particle(sim, j);
            const double* xa = &PX(a);
            const double* xb = &PX(b);
            const double* va = &PV(a);
            const double* vb = &PV(b);
            const double rho = sg_rho_t_pair(xa[0] - xb[0], xa[1] - xb[1], xa[2] - xb[2],
                                             va[0] - vb[0], va[1] - vb[1], va[2] - vb[2],
                                             G * (PM(a) + PM(b)));
            if (rho < rho_min) rho_min = rho;
        }
    }
    return rho_min;
}

double stepgym_rule_radius(const char* sim, double value) {
    (void)value;
    return stepgym_rho_t_system(sim);
}
#endif

static double monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One advance in progress. REBOUND runs the rule from its heartbeat (called before the first
 * step and after every step of one reb_simulation_steps call), so a whole decision is one
 * call into REBOUND and the per-step overhead is the rule itself. */
struct advance {
    const double* request;
    double* counter;
    double* cap;     /* BS's max_dt, or NULL */
    scale_fn_t scale;
    uint64_t steps0; /* steps_done at the start of the advance */
    uint64_t seen;   /* steps_done at the last heartbeat */
    long block_left; /* steps left in the current block (slice mode, retime_every > 1) */
    long pass;       /* blocks completed */
    double t_before; /* t at the start of the current block */
    int code;        /* SG_* once the advance decided to end */
};

static __thread struct advance* current = 0;

static void stop(char* sim, struct advance* a, int code) {
    a->code = code;
    AT(sim, int, SIM_STATUS) = REB_USER_STOP;
}

/* The one budget check: evaluations (counted, or steps x per-step) every block and, every
 * CLOCK_EVERY blocks, the wall-clock deadline. */
static int over_budget(const char* sim, struct advance* a) {
    double* counter = a->counter;
    const double per_step = a->request[RQ_PER_STEP];
    const uint64_t steps = AT(sim, uint64_t, SIM_STEPS_DONE) - a->steps0;
    const double done = per_step > 0.0 ? (double)steps * per_step : counter[CT_COUNT];
    int over = counter[CT_STOPPED] != 0.0 || done > counter[CT_LIMIT];
    if (!over && a->pass % CLOCK_EVERY == 0) over = monotonic_now() > counter[CT_DEADLINE];
    if (over) counter[CT_STOPPED] = 1.0;
    return over;
}

/* Set the step the way the scheme's apply_step does. */
static void set_step(char* sim, struct advance* a, double dt) {
    AT(sim, double, SIM_DT) = dt;
    if (a->cap) *a->cap = dt;
}

/* Slice mode, at a block boundary: the next block of steps value * scale (n of them when
 * retime_every > 1), the last one shortened to land on t_end; as the Python reference. */
static void start_block_to(char* sim, struct advance* a) {
    const double t_end = a->request[RQ_T_END], retime = a->request[RQ_RETIME_EVERY];
    const double t = AT(sim, double, SIM_T);
    const double remaining = t_end - t;
    if (remaining <= 1e-13 * fmax(1.0, fabs(t_end))) return stop(sim, a, SG_DONE);
    const double value = a->request[RQ_VALUE];
    const double dt = value * a->scale(sim, value);
    if (!(dt > 0.0)) return stop(sim, a, SG_BAD_STEP);
    long n = 1;
    if (dt < remaining) {
        const double ratio = remaining / dt;
        n = ratio >= retime ? (long)retime : (ratio >= 1.0 ? (long)ratio : 1);
    }
    set_step(sim, a, dt < remaining ? dt : remaining);
    a->block_left = n;
    a->t_before = t;
}

static void heartbeat_to(char* sim, struct advance* a) {
    if (--a->block_left > 0) return;
    a->pass++;
    if (!(AT(sim, double, SIM_T) > a->t_before)) return stop(sim, a, SG_CLOCK_STOPPED);
    if (over_budget(sim, a)) return stop(sim, a, SG_BUDGET);
    start_block_to(sim, a);
}

/* Fine mode: after each step, the budget, then the next step value * scale. */
static void heartbeat_steps(char* sim, struct advance* a) {
    a->pass++;
    if (over_budget(sim, a)) return stop(sim, a, SG_BUDGET);
    if (a->pass >= (long)a->request[RQ_N_STEPS]) return; /* REBOUND's loop ends here */
    const double value = a->request[RQ_VALUE];
    const double dt = value * a->scale(sim, value);
    if (!(dt > 0.0)) return stop(sim, a, SG_BAD_STEP);
    set_step(sim, a, dt);
}

static void heartbeat(char* sim) {
    struct advance* a = current;
    const uint64_t steps = AT(sim, uint64_t, SIM_STEPS_DONE);
    if (a == 0 || steps == a->seen || a->code != SG_RUNNING) return; /* no new step */
    a->seen = steps;
    if (a->request[RQ_FINE] != 0.0) {
        heartbeat_steps(sim, a);
    } else {
        heartbeat_to(sim, a);
    }
}

/* Advance one simulation under a rule; returns SG_* or a positive REBOUND status. */
int stepgym_advance(char* sim, const double* request, double* counter, double* cap,
                    void* scale) {
    struct advance a = {request, counter, cap, (scale_fn_t)scale, 0, 0, 0, 0, 0.0, SG_RUNNING};
    a.steps0 = a.seen = AT(sim, uint64_t, SIM_STEPS_DONE);
    const int fine = request[RQ_FINE] != 0.0;
    size_t n_steps = (size_t)1 << 62;
    if (fine) {
        n_steps = (size_t)request[RQ_N_STEPS];
        if (n_steps == 0) return SG_DONE;
        const double value = request[RQ_VALUE];
        const double dt = value * a.scale(sim, value);
        if (!(dt > 0.0)) return SG_BAD_STEP;
        set_step(sim, &a, dt);
    } else {
        start_block_to(sim, &a);
        if (a.code != SG_RUNNING) return a.code;
    }
    heartbeat_fn_t saved = AT(sim, heartbeat_fn_t, SIM_HEARTBEAT);
    AT(sim, heartbeat_fn_t, SIM_HEARTBEAT) = heartbeat;
    current = &a;
    const int status = reb_steps(sim, n_steps);
    current = 0;
    AT(sim, heartbeat_fn_t, SIM_HEARTBEAT) = saved;
    if (status > 0 && status != REB_USER_STOP) return status;
    return a.code == SG_RUNNING ? SG_DONE : a.code;
}
