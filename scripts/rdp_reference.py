#!/usr/bin/python3
"""Reference values for the RDP accountant's tests (tests/unit/test_rdp_accountant.cpp).

Usage: scripts/rdp_reference.py            prints the C++ test vectors

Computed independently of fedgan's C++ with mpmath at 40 significant digits:
  * A_alpha of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, Sec. 3.3) as the
    integral  A_alpha = E_{z~N(0,s^2)} [((1-q) + q exp((2z-1)/(2 s^2)))^alpha], the definition
    TF Privacy's rdp_accountant_test.py (_compute_a_mp) also integrates, split at the integrand's
    peak so that mp.quad resolves it; for integer alpha also by the exact binomial sum, and the
    two must agree to 1e-20 relative or the script stops;
  * RDP per step = log(A_alpha)/(alpha-1), composed over steps by multiplication;
  * epsilon by Balle et al. 2020 (Thm. 21) = TF Privacy's _compute_eps,
      eps(a) = r + log1p(-1/a) - log(delta*a)/(a-1),  minimised over the orders,
    and by the classic conversion (Mironov 2017, Prop. 3), eps(a) = r - log(delta)/(a-1).
"""
import mpmath as mp

mp.mp.dps = 40


def a_integral(q, sigma, alpha):
    q, sigma, alpha = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)

    def f(z):
        mu0 = mp.npdf(z, 0, sigma)
        return mu0 * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * sigma**2))) ** alpha

    # The integrand is a mixture of Gaussians; its mass sits between 0 and about alpha.
    points = [-mp.inf, -10 * sigma, 0, mp.mpf(1) / 2, 1, alpha / 2, alpha, alpha + 10 * sigma,
              mp.inf]
    points = sorted(set(points))
    return mp.quad(f, points, maxdegree=10)


def a_binomial(q, sigma, alpha):
    q, sigma = mp.mpf(q), mp.mpf(sigma)
    total = mp.mpf(0)
    for i in range(alpha + 1):
        total += mp.binomial(alpha, i) * q**i * (1 - q) ** (alpha - i) * mp.exp(
            mp.mpf(i * i - i) / (2 * sigma**2))
    return total


def log_a(q, sigma, alpha, check=False):
    if float(alpha).is_integer():
        exact = a_binomial(q, sigma, int(alpha))
        if not check:
            return mp.log(exact)
        numeric = a_integral(q, sigma, alpha)
        if abs(numeric - exact) > mp.mpf("1e-20") * abs(exact):
            raise SystemExit(f"quadrature disagrees at q={q} sigma={sigma} alpha={alpha}")
        return mp.log(exact)
    return mp.log(a_integral(q, sigma, alpha))


def rdp(q, sigma, alpha):
    if q == 0:
        return mp.mpf(0)
    if q == 1:
        return mp.mpf(alpha) / (2 * mp.mpf(sigma) ** 2)
    return log_a(q, sigma, alpha) / (mp.mpf(alpha) - 1)


def eps_balle(orders, rdps, delta):
    best = None
    for a, r in zip(orders, rdps):
        a = mp.mpf(a)
        if delta**2 + mp.expm1(-r) >= 0:
            e = mp.mpf(0)
        elif a > mp.mpf("1.01"):
            e = r + mp.log1p(-1 / a) - mp.log(delta * a) / (a - 1)
        else:
            e = mp.inf
        if best is None or e < best[0]:
            best = (e, a)
    return max(best[0], 0), best[1]


def eps_classic(orders, rdps, delta):
    best = None
    for a, r in zip(orders, rdps):
        a = mp.mpf(a)
        e = mp.inf if a == 1 else r - mp.log(delta) / (a - 1)
        if best is None or e < best[0]:
            best = (e, a)
    return best


# TF Privacy's DEFAULT_RDP_ORDERS (rdp_privacy_accountant.py), fedgan's default.
ORDERS = [1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5] + list(range(5, 64)) + [128, 256, 512]

# (q, sigma, alpha): TF Privacy rdp_accountant_test.py's test_compute_log_a_equals_mp cases,
# and orders of fedgan-like settings.
LOG_A_CASES = [
    (1e-7, .1, 1.01),
    (1e-6, 0.1, 256), (1e-5, 0.1, 256.1), (1e-6, 1, 27), (1e-4, 1., 1.5), (1e-3, 1., 2),
    (.01, 10, 20), (.1, 100, 20.5), (.99, .1, 256), (.999, 100, 256.1),
    (0.01, 1.1, 1.25), (0.01, 1.1, 2.25), (0.01, 1.1, 4.5), (0.01, 1.1, 32), (0.01, 1.1, 512),
    (0.1, 0.8, 3.5), (0.1, 0.8, 63), (0.5, 2.0, 7.5), (0.05, 5.0, 128),
]

# (q, sigma, steps, delta): whole accounts over ORDERS.
EPS_CASES = [
    (0.01, 1.1, 1000, 1e-5),    # the example
    (0.01, 1.0, 1000, 1e-4),    # 1,000 parties, 10 per round, delta = 1/(10 P)
    (0.1, 1.0, 200, 1e-4),
    (0.05, 0.8, 500, 1e-4),
    (1.0, 10.0, 10, 1e-5),      # no sampling: RDP = alpha/(2 sigma^2)
]


def main():
    print("// log A_alpha: {q, sigma, alpha, log A}")
    for q, s, a in LOG_A_CASES:
        print(f"    {{{q!r}, {s!r}, {a!r}, {mp.nstr(log_a(q, s, a, check=True), 17)}}},",
              flush=True)
    print("// composed accounts over TF Privacy's default orders: "
          "{q, sigma, steps, delta, eps_balle, order, eps_classic, order}")
    for q, s, steps, d in EPS_CASES:
        r = [rdp(q, s, a) * steps for a in ORDERS]
        eb, ob = eps_balle(ORDERS, r, mp.mpf(d))
        ec, oc = eps_classic(ORDERS, r, mp.mpf(d))
        print(f"    {{{q!r}, {s!r}, {steps}, {d!r}, {mp.nstr(eb, 17)}, {mp.nstr(ob, 6)}, "
              f"{mp.nstr(ec, 17)}, {mp.nstr(oc, 6)}}},", flush=True)
    # TF Privacy's published cases, recomputed here.
    print("// TF test_compute_rdp_scalar:", mp.nstr(rdp(0.1, 2, 5) * 10, 12))
    print("// TF test_compute_rdp_sequence:",
          [mp.nstr(rdp(0.01, 2.5, a) * 50, 12) for a in (1.5, 2.5, 5, 50, 100)])
    orders = list(range(2, 33))
    e, o = eps_balle(orders, [mp.mpf("1.1")] * len(orders), mp.mpf("1e-5"))
    print("// TF test_get_privacy_spent_check_target_delta:", mp.nstr(e, 15), o)
    comp_rdp = [rdp(1e-4, .4, a) * 40000 + rdp(0.1, 2, a) * 100
                for a in (1.25, 1.5, 1.75, 2., 2.5, 3., 4., 5., 6., 7., 8., 10., 12., 14., 16.,
                          20., 24., 28., 32., 64., 256.)]
    e, o = eps_balle((1.25, 1.5, 1.75, 2., 2.5, 3., 4., 5., 6., 7., 8., 10., 12., 14., 16., 20.,
                      24., 28., 32., 64., 256.), comp_rdp, mp.mpf("1e-5"))
    print("// TF test_check_composition (<= 8.509656):", mp.nstr(e, 15), o)


if __name__ == "__main__":
    main()
