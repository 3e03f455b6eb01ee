/* The time-domain radius rho_t of one pair, capped at 1/n (C99, only <math.h>).
 *
 * The same computation as stepgym/integrators/rho_t.py (whose docstring holds the
 * derivation): the pair is a Kepler two-body problem with mu = G (m_i + m_j); its
 * nearest complex collision time is tau +- i Y from now with
 *     tau = (q chi + e chi^3 S(alpha chi^2)) / sqrt(mu)   (time since pericentre),
 *     Y   = sqrt(p^3 / mu) g(1 - e^2),   g(z) = sum_j z^j / (2j + 3),
 * and rho_t = min(|tau + i Y|, 1/n), all evaluated in the pair's units (length r, time
 * sqrt(r^3 / mu)). Zero distance gives 0; mu <= 0 or non-finite input gives NaN.
 * Keep the constants and the order of operations in step with rho_t.py: the tests compare
 * the two to round-off.
 */
#ifndef STEPGYM_RHO_T_H
#define STEPGYM_RHO_T_H

#include <math.h>

#define SG_RHO_T_SERIES_Z 0.1
#define SG_RHO_T_G_TERMS 18
#define SG_RHO_T_SERIES_PSI 1.0
#define SG_RHO_T_S_TERMS 10

/* g(z) = sum_j z^j / (2j + 3) for z <= 1 (infinite at z = 1, the circular orbit). */
static inline double sg_rho_t_g(double z) {
    if (fabs(z) < SG_RHO_T_SERIES_Z) {
        double acc = 0.0;
        for (int j = SG_RHO_T_G_TERMS - 1; j >= 0; --j) acc = acc * z + 1.0 / (2 * j + 3);
        return acc;
    }
    if (z >= 1.0) return INFINITY;
    if (z > 0.0) {
        double s = sqrt(z);
        return (atanh(s) - s) / (s * s * s);
    }
    double s = sqrt(-z);
    return (s - atan(s)) / (s * s * s);
}

/* Stumpff's S(psi) = sum_k (-psi)^k / (2k + 3)!. */
static inline double sg_rho_t_stumpff_s(double psi) {
    if (fabs(psi) < SG_RHO_T_SERIES_PSI) {
        double factorial[2 * SG_RHO_T_S_TERMS + 3];
        factorial[0] = 1.0;
        for (int i = 1; i < 2 * SG_RHO_T_S_TERMS + 3; ++i) factorial[i] = factorial[i - 1] * i;
        double acc = 0.0;
        for (int k = SG_RHO_T_S_TERMS - 1; k >= 0; --k)
            acc = acc * (-psi) + 1.0 / factorial[2 * k + 3];
        return acc;
    }
    if (psi > 0.0) {
        double x = sqrt(psi);
        return (x - sin(x)) / (x * x * x);
    }
    double x = sqrt(-psi);
    return (sinh(x) - x) / (x * x * x);
}

/* rho_t of the pair with relative position (dx, dy, dz), velocity (dvx, dvy, dvz) and
 * mu = G (m_i + m_j), capped at 1/n. */
static inline double sg_rho_t_pair(double dx, double dy, double dz, double dvx, double dvy,
                                   double dvz, double mu) {
    double r = sqrt(dx * dx + dy * dy + dz * dz);
    int finite_v = isfinite(dvx) && isfinite(dvy) && isfinite(dvz);
    if (r == 0.0 && mu > 0.0 && finite_v) return 0.0;
    if (!(r > 0.0 && mu > 0.0 && isfinite(r * mu) && finite_v)) return NAN;
    double time_unit = r * sqrt(r / mu);
    double speed_unit = sqrt(mu / r);
    double x0 = dx / r, x1 = dy / r, x2 = dz / r;
    double v0 = dvx / speed_unit, v1 = dvy / speed_unit, v2 = dvz / speed_unit;
    double w = v0 * v0 + v1 * v1 + v2 * v2;
    double sigma = x0 * v0 + x1 * v1 + x2 * v2;
    double h0 = x1 * v2 - x2 * v1, h1 = x2 * v0 - x0 * v2, h2 = x0 * v1 - x1 * v0;
    double p = h0 * h0 + h1 * h1 + h2 * h2;
    double alpha = 2.0 - w;
    double z = fmin(p * alpha, 1.0);
    double e = sqrt(1.0 - z);
    double q = p / (1.0 + e);
    double u = sqrt(fabs(alpha));
    double chi = sigma / (e > 0.0 ? e : 1.0); /* the parabola (alpha == 0) */
    double psi = 0.0;
    if (alpha > 0.0) {
        double anomaly = atan2(sigma * u, 1.0 - alpha);
        chi = anomaly / u;
        psi = anomaly * anomaly;
    } else if (alpha < 0.0) {
        double anomaly = asinh(sigma * u / e);
        chi = anomaly / u;
        psi = -anomaly * anomaly;
    }
    double tau = q * chi + e * (chi * chi * chi) * sg_rho_t_stumpff_s(psi);
    double imag = p > 0.0 ? p * sqrt(p) * sg_rho_t_g(z) : 0.0;
    double cap = alpha != 0.0 ? 1.0 / (u * u * u) : INFINITY;
    double rho = hypot(tau, imag);
    return (rho > cap ? cap : rho) * time_unit; /* NaN stays NaN, as np.minimum */
}

#endif /* STEPGYM_RHO_T_H */
