//! Small-sample statistics for the gate, written by hand (no statistics crate): medians, a
//! seeded bootstrap of the median, Welch's t-test with Student's t distribution, a one-sided
//! count test on event totals, the Holm–Bonferroni step-down adjustment, and E-Divisive means
//! change points with a t-test (for `history`).
//!
//! Everything here is pure and deterministic: no I/O, no clock, no global RNG. `docs/loadgen.md`
//! ("Statistics of the gate") explains why these methods were chosen.

/// The median of `xs` (the mean of the middle two for an even count); `None` when empty or
/// when any value is not finite.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mid = n / 2;
    if n % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

/// Arithmetic mean; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample variance (n − 1 denominator); `None` below two values.
pub fn variance(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    Some(xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64)
}

/// A small, seeded xorshift64* generator: the bootstrap must give the same interval every
/// time a folder is summarised.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is remapped: xorshift never leaves zero).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A uniform index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }
}

/// Resamples the bootstrap draws.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// A percentile-bootstrap interval of the median of `xs` at `confidence` (e.g. 0.95), seeded.
/// With one value the interval is that value; `None` when empty.
pub fn bootstrap_median_ci(xs: &[f64], confidence: f64, seed: u64) -> Option<(f64, f64)> {
    let m = median(xs)?;
    if xs.len() < 2 {
        return Some((m, m));
    }
    let mut rng = Rng::new(seed);
    let mut meds = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let mut sample = vec![0.0; xs.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for s in sample.iter_mut() {
            *s = xs.get(rng.below(xs.len())).copied().unwrap_or(m);
        }
        meds.push(median(&sample)?);
    }
    meds.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    let at = |q: f64| -> f64 {
        let i = ((meds.len() - 1) as f64 * q).round() as usize;
        meds.get(i).copied().unwrap_or(m)
    };
    Some((at(tail), at(1.0 - tail)))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1.
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        (front * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - front * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// P(T > t) for Student's t with `df` degrees of freedom (df > 0).
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 { tail } else { 1.0 - tail }
}

/// The t with P(T > t) = `p` (0 < p < 1), by bisection on [`student_t_sf`].
pub fn student_t_isf(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) || df <= 0.0 {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (-1e6_f64, 1e6_f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if student_t_sf(mid, df) > p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-10 {
            break;
        }
    }
    (lo + hi) / 2.0
}

/// Welch's two-sample t statistic of `b − a`: (t, degrees of freedom, standard error).
/// `None` when either side has fewer than two values.
pub fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let (va, vb) = (variance(a)?, variance(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let diff = mean(b)? - mean(a)?;
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    if se2 <= 0.0 {
        // Both sides constant: the difference is exact.
        let t = if diff > 0.0 {
            f64::INFINITY
        } else if diff < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        return Some((t, na + nb - 2.0, 0.0));
    }
    let df = se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    Some((diff / se2.sqrt(), df.max(1.0), se2.sqrt()))
}

/// One-sided Welch test that `b`'s mean is larger than `a`'s: the p-value.
pub fn welch_greater_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (t, df, _) = welch(a, b)?;
    Some(student_t_sf(t, df))
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // P(X ≥ k) = I_p(k, n − k + 1).
    inc_beta(k as f64, (n - k + 1) as f64, p)
}

/// One-sided count test: are the candidate's events (`cand` in `cand_exposure` trials) more
/// frequent than the baseline's (`base` in `base_exposure`)? Conditional on the total, the
/// candidate's share is binomial under equal rates. Returns the p-value (1 when there are no
/// events at all).
pub fn count_greater_p(base: u64, base_exposure: f64, cand: u64, cand_exposure: f64) -> f64 {
    let total = base + cand;
    if total == 0 || base_exposure <= 0.0 || cand_exposure <= 0.0 {
        return 1.0;
    }
    let share = cand_exposure / (base_exposure + cand_exposure);
    binomial_sf(cand, total, share)
}

/// Holm–Bonferroni adjusted p-values, in the input order. Reject at level α where the
/// adjusted value is ≤ α; this controls the family-wise error rate at α.
pub fn holm(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| {
        let pa = ps.get(*a).copied().unwrap_or(1.0);
        let pb = ps.get(*b).copied().unwrap_or(1.0);
        pa.total_cmp(&pb)
    });
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let p = ps.get(i).copied().unwrap_or(1.0);
        running = running.max(((m - rank) as f64 * p).min(1.0));
        if let Some(o) = out.get_mut(i) {
            *o = running;
        }
    }
    out
}

/// A change point found by [`e_divisive`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// The first index of the new segment.
    pub index: usize,
    /// Mean after over mean before, minus one (of the neighbouring segments).
    pub change: f64,
    /// Two-sided Student (pooled) p-value between the neighbouring segments.
    pub p_value: f64,
}

/// The E-Divisive (α = 1) divergence statistic of splitting `xs` at `tau`, scaled as in
/// Matteson & James: (n_l·n_r/(n_l+n_r)) · (2·E|X−Y| − E|X−X'| − E|Y−Y'|).
fn divergence(xs: &[f64], tau: usize) -> f64 {
    let (left, right) = xs.split_at(tau);
    let (nl, nr) = (left.len() as f64, right.len() as f64);
    if left.is_empty() || right.is_empty() {
        return 0.0;
    }
    let mut between = 0.0;
    for x in left {
        for y in right {
            between += (x - y).abs();
        }
    }
    between /= nl * nr;
    let within = |s: &[f64]| -> f64 {
        let n = s.len();
        if n < 2 {
            return 0.0;
        }
        let mut sum = 0.0;
        for (i, x) in s.iter().enumerate() {
            for y in s.iter().skip(i + 1) {
                sum += (x - y).abs();
            }
        }
        sum / (n * (n - 1) / 2) as f64
    };
    nl * nr / (nl + nr) * (2.0 * between - within(left) - within(right))
}

/// Student's two-sample t statistic with pooled variance: (t, degrees of freedom). Pooling
/// keeps a short segment whose few values happen to agree from looking precise.
pub fn student_pooled(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    if a.len() + b.len() < 3 || a.is_empty() || b.is_empty() {
        return None;
    }
    let ss = |xs: &[f64]| -> f64 {
        let m = mean(xs).unwrap_or(0.0);
        xs.iter().map(|x| (x - m).powi(2)).sum()
    };
    let df = na + nb - 2.0;
    let pooled = (ss(a) + ss(b)) / df;
    let diff = mean(b)? - mean(a)?;
    let se = (pooled * (1.0 / na + 1.0 / nb)).sqrt();
    if se <= 0.0 {
        let t = if diff == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(diff)
        };
        return Some((t, df));
    }
    Some((diff / se, df))
}

/// Two-sided Student p-value between two segments; 1 when it cannot be computed.
fn segment_p(a: &[f64], b: &[f64]) -> f64 {
    match student_pooled(a, b) {
        Some((t, df)) if t.is_finite() => (2.0 * student_t_sf(t.abs(), df)).min(1.0),
        Some((t, _)) if t != 0.0 => 0.0,
        _ => 1.0,
    }
}

/// E-Divisive means change points with a Student t-test as the significance test, the way
/// Apache Otava (Hunter) does it: repeatedly split the segment holding the best divergence,
/// keep a split only when the two new neighbouring segments differ at `max_p` by Student's
/// t-test (pooled variance), and stop when no split is significant. Segments shorter than `min_size` are not
/// split. Change points come back sorted by index.
pub fn e_divisive(xs: &[f64], max_p: f64, min_size: usize) -> Vec<ChangePoint> {
    let min_size = min_size.max(2);
    let mut cuts: Vec<usize> = vec![0, xs.len()];
    // Each pass adds at most one cut, and there can be at most len / min_size of them.
    for _ in 0..=xs.len() / min_size {
        let mut best: Option<(f64, usize)> = None;
        for w in cuts.windows(2) {
            let (Some(&s), Some(&e)) = (w.first(), w.get(1)) else {
                continue;
            };
            let Some(seg) = xs.get(s..e) else { continue };
            if seg.len() < 2 * min_size {
                continue;
            }
            for tau in min_size..=seg.len() - min_size {
                let d = divergence(seg, tau);
                if best.is_none_or(|(bd, _)| d > bd) {
                    best = Some((d, s + tau));
                }
            }
        }
        let Some((_, at)) = best else { break };
        let mut trial = cuts.clone();
        trial.push(at);
        trial.sort_unstable();
        let pos = trial.iter().position(|c| *c == at).unwrap_or(0);
        let (Some(&s), Some(&e)) = (trial.get(pos.wrapping_sub(1)), trial.get(pos + 1)) else {
            break;
        };
        let (Some(a), Some(b)) = (xs.get(s..at), xs.get(at..e)) else {
            break;
        };
        if segment_p(a, b) > max_p {
            break;
        }
        cuts = trial;
    }
    // Re-test every kept cut against its final neighbours.
    let mut out = Vec::new();
    for w in cuts.windows(3) {
        let (Some(&s), Some(&c), Some(&e)) = (w.first(), w.get(1), w.get(2)) else {
            continue;
        };
        let (Some(a), Some(b)) = (xs.get(s..c), xs.get(c..e)) else {
            continue;
        };
        let p = segment_p(a, b);
        let (ma, mb) = (mean(a).unwrap_or(0.0), mean(b).unwrap_or(0.0));
        out.push(ChangePoint {
            index: c,
            change: if ma != 0.0 { mb / ma - 1.0 } else { 0.0 },
            p_value: p,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-12));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn student_t_matches_tables() {
        // Two-sided 95% critical values: df 4 → 2.776, df 10 → 2.228; 99% one-sided df 8 → 2.896.
        assert!(close(student_t_sf(2.776, 4.0), 0.025, 1e-4));
        assert!(close(student_t_sf(2.228, 10.0), 0.025, 1e-4));
        assert!(close(student_t_isf(0.01, 8.0), 2.896, 1e-3));
        assert!(close(student_t_sf(0.0, 3.0), 0.5, 1e-12));
        assert!(close(student_t_sf(-2.776, 4.0), 0.975, 1e-4));
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        // P(X ≥ 7 | n = 7, p = 0.5) = 1/128.
        assert!(close(binomial_sf(7, 7, 0.5), 1.0 / 128.0, 1e-12));
        // P(X ≥ 2 | n = 3, p = 0.5) = 4/8.
        assert!(close(binomial_sf(2, 3, 0.5), 0.5, 1e-12));
        assert_eq!(binomial_sf(0, 3, 0.5), 1.0);
    }

    #[test]
    fn count_test_needs_enough_extra_events() {
        assert_eq!(count_greater_p(0, 1000.0, 0, 1000.0), 1.0);
        assert!(count_greater_p(0, 1000.0, 1, 1000.0) > 0.4);
        assert!(count_greater_p(0, 1000.0, 50, 1000.0) < 1e-10);
        assert!(count_greater_p(50, 1000.0, 50, 1000.0) > 0.4);
    }

    #[test]
    fn holm_adjusts_step_down() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        // Sorted: 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06, 0.04×1 → max so far 0.06.
        assert!(close(adj[3], 0.02, 1e-12));
        assert!(close(adj[0], 0.03, 1e-12));
        assert!(close(adj[2], 0.06, 1e-12));
        assert!(close(adj[1], 0.06, 1e-12));
    }

    #[test]
    fn welch_on_a_clear_shift_and_on_equal_samples() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let b: Vec<f64> = a.iter().map(|x| x * 1.3).collect();
        assert!(welch_greater_p(&a, &b).unwrap() < 1e-6);
        assert!(welch_greater_p(&b, &a).unwrap() > 0.99);
        assert!(close(welch_greater_p(&a, &a).unwrap(), 0.5, 1e-12));
        assert!(welch_greater_p(&a[..1], &b).is_none());
    }

    #[test]
    fn bootstrap_interval_brackets_the_median_and_is_repeatable() {
        let xs = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 30.0];
        let (lo, hi) = bootstrap_median_ci(&xs, 0.95, 7).unwrap();
        let m = median(&xs).unwrap();
        assert!(lo <= m && m <= hi);
        assert!(hi < 30.0);
        assert_eq!(bootstrap_median_ci(&xs, 0.95, 7), Some((lo, hi)));
        assert_eq!(bootstrap_median_ci(&[5.0], 0.95, 7), Some((5.0, 5.0)));
    }

    #[test]
    fn e_divisive_finds_one_step_and_none_in_flat_noise() {
        let mut xs = Vec::new();
        let mut rng = Rng::new(3);
        for i in 0..40 {
            let noise = (rng.below(1000) as f64 / 1000.0 - 0.5) * 2.0;
            xs.push(if i < 25 { 100.0 } else { 120.0 } + noise);
        }
        let cps = e_divisive(&xs, 0.001, 3);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert_eq!(cps[0].index, 25);
        assert!(close(cps[0].change, 0.2, 0.02));

        let flat: Vec<f64> = (0..40)
            .map(|_| 100.0 + (rng.below(1000) as f64 / 1000.0 - 0.5) * 2.0)
            .collect();
        let found = e_divisive(&flat, 0.001, 3);
        assert!(found.is_empty(), "{found:?} {flat:?}");
    }
}
