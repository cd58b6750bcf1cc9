//! Ranking and regression metrics for judging a performance predictor.
//!
//! A NAS predictor is mostly used to *rank* candidate architectures, so the
//! headline numbers are rank correlations (Kendall's tau-b, Spearman) and
//! top-K retrieval scores (precision@K, N@K); MAE/RMSE/Pearson are reported
//! alongside to catch calibration problems.
//!
//! Conventions shared by every function here, chosen so that evaluation code
//! never panics on user data:
//!
//! * `pred` / `x` and `truth` / `y` must have the same length. On a length
//!   mismatch the float-valued metrics return `NaN` and [`n_at_k`] returns `0`
//!   instead of silently evaluating a truncated prefix, which would hide a bug
//!   upstream.
//! * Correlations and errors return `NaN` when undefined (too few points, a
//!   constant side) or when any input is `NaN`, so a diverged model shows up as
//!   `NaN` rather than as a plausible-looking number.
//! * Top-K metrics treat `NaN` as the worst possible value (never selected as
//!   "top") and break ties by index, so their output is deterministic.

use std::cmp::Ordering;
use std::fmt;

/// Total order on `f64` used for all sorting here.
///
/// Unlike [`f64::total_cmp`] it treats `-0.0 == 0.0` (they must count as a
/// tie), and unlike `partial_cmp` it never fails: `NaN` sorts above every
/// number and equal to itself. Being a genuine total order matters because
/// `sort_by` may panic on inconsistent comparators.
fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Descending order with `NaN` last, used to pick "top" items.
fn cmp_desc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => cmp_f64(b, a),
        (an, bn) => an.cmp(&bn),
    }
}

fn any_nan(v: &[f64]) -> bool {
    v.iter().any(|a| a.is_nan())
}

/// Number of unordered pairs inside runs of equal values of an already
/// sorted slice, i.e. `sum t*(t-1)/2` over tie groups.
fn tied_pairs_sorted(v: &[f64]) -> u64 {
    let mut total = 0u64;
    let mut run = 1u64;
    for w in v.windows(2) {
        if cmp_f64(w[0], w[1]) == Ordering::Equal {
            run += 1;
        } else {
            total += run * (run - 1) / 2;
            run = 1;
        }
    }
    if !v.is_empty() {
        total += run * (run - 1) / 2;
    }
    total
}

/// Sorts `v` ascending with a bottom-up merge sort and returns the number of
/// strict inversions (pairs `i < j` with `v[i] > v[j]`).
///
/// Equal elements are not counted: the merge takes from the left run on
/// ties, which is exactly what Knight's algorithm needs so that y-ties are not
/// mistaken for discordant pairs.
fn sort_count_inversions(v: &mut Vec<f64>) -> u64 {
    let n = v.len();
    let mut buf = vec![0.0f64; n];
    let mut swaps = 0u64;
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if cmp_f64(v[i], v[j]) != Ordering::Greater {
                    buf[k] = v[i];
                    i += 1;
                } else {
                    buf[k] = v[j];
                    j += 1;
                    swaps += (mid - i) as u64;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&v[i..mid]);
            k += mid - i;
            buf[k..k + (end - j)].copy_from_slice(&v[j..end]);
            start = end;
        }
        std::mem::swap(v, &mut buf);
        width *= 2;
    }
    swaps
}

/// Kendall's tau-b (tie-corrected) in O(n log n) using Knight's algorithm.
///
/// tau-b is the standard rank metric in the NAS-predictor literature and the
/// tie correction matters because benchmark accuracies are heavily quantised.
/// Returns `NaN` if the lengths differ, `n < 2`, either side is constant, or
/// any value is `NaN`.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n != y.len() || n < 2 || any_nan(x) || any_nan(y) {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp_f64(x[a], x[b]).then_with(|| cmp_f64(y[a], y[b])));

    let total = (n as u64) * (n as u64 - 1) / 2;

    // Pairs tied in x (n1) and tied in both x and y (n3), from runs in the
    // (x, y)-sorted order.
    let mut x_ties = 0u64;
    let mut joint_ties = 0u64;
    let mut x_run = 1u64;
    let mut xy_run = 1u64;
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        if cmp_f64(x[a], x[b]) == Ordering::Equal {
            x_run += 1;
            if cmp_f64(y[a], y[b]) == Ordering::Equal {
                xy_run += 1;
            } else {
                joint_ties += xy_run * (xy_run - 1) / 2;
                xy_run = 1;
            }
        } else {
            x_ties += x_run * (x_run - 1) / 2;
            joint_ties += xy_run * (xy_run - 1) / 2;
            x_run = 1;
            xy_run = 1;
        }
    }
    x_ties += x_run * (x_run - 1) / 2;
    joint_ties += xy_run * (xy_run - 1) / 2;

    // Inversions of y in x-order are the discordant pairs: within an x-tie
    // group y is already ascending, so those pairs contribute nothing.
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let discordant = sort_count_inversions(&mut ys);
    let y_ties = tied_pairs_sorted(&ys);

    if x_ties == total || y_ties == total {
        return f64::NAN;
    }
    // concordant - discordant = (total - n1 - n2 + n3 - D) - D
    let numer =
        total as f64 - x_ties as f64 - y_ties as f64 + joint_ties as f64 - 2.0 * discordant as f64;
    let denom = ((total - x_ties) as f64).sqrt() * ((total - y_ties) as f64).sqrt();
    (numer / denom).clamp(-1.0, 1.0)
}

/// O(n^2) reference implementation of tau-b, used to test the fast one.
#[cfg(test)]
pub(crate) fn kendall_tau_b_naive(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n != y.len() || n < 2 || any_nan(x) || any_nan(y) {
        return f64::NAN;
    }
    let (mut conc, mut disc, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in (i + 1)..n {
            let sx = cmp_f64(x[i], x[j]);
            let sy = cmp_f64(y[i], y[j]);
            match (sx, sy) {
                (Ordering::Equal, Ordering::Equal) => {}
                (Ordering::Equal, _) => tx += 1,
                (_, Ordering::Equal) => ty += 1,
                _ if sx == sy => conc += 1,
                _ => disc += 1,
            }
        }
    }
    let dx = (conc + disc + tx) as f64;
    let dy = (conc + disc + ty) as f64;
    if dx == 0.0 || dy == 0.0 {
        return f64::NAN;
    }
    (conc - disc) as f64 / (dx * dy).sqrt()
}

/// 1-based ranks where tied values share the average of their positions,
/// the convention that makes Spearman equal Pearson-on-ranks with ties.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp_f64(v[a], v[b]));
    let mut ranks = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && cmp_f64(v[idx[start]], v[idx[end]]) == Ordering::Equal {
            end += 1;
        }
        // Positions start..end (0-based) -> ranks start+1..=end, averaged.
        let avg = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = avg;
        }
        start = end;
    }
    ranks
}

/// Spearman's rho: Pearson correlation of average ranks.
///
/// Returns `NaN` on length mismatch, `n < 2`, a constant side, or `NaN` input.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() || x.len() < 2 || any_nan(x) || any_nan(y) {
        return f64::NAN;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Pearson's linear correlation coefficient.
///
/// Uses a two-pass (mean-centred) formula for numerical stability and clamps
/// to `[-1, 1]` so rounding can never report an impossible value. Returns
/// `NaN` on length mismatch, `n < 2`, zero variance, or non-finite input.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n != y.len() || n < 2 {
        return f64::NAN;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    // Zero variance leaves the coefficient undefined; NaN/inf inputs make
    // the sums non-finite (and `NaN > 0.0` is false), so both give NaN.
    let defined = sxx > 0.0 && syy > 0.0 && sxx.is_finite() && syy.is_finite();
    if !defined {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Mean absolute error. `NaN` on length mismatch or empty input.
pub fn mae(pred: &[f64], truth: &[f64]) -> f64 {
    if pred.len() != truth.len() || pred.is_empty() {
        return f64::NAN;
    }
    pred.iter()
        .zip(truth)
        .map(|(p, t)| (p - t).abs())
        .sum::<f64>()
        / pred.len() as f64
}

/// Root mean squared error. `NaN` on length mismatch or empty input.
pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    if pred.len() != truth.len() || pred.is_empty() {
        return f64::NAN;
    }
    let mse = pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / pred.len() as f64;
    mse.sqrt()
}

/// Indices of the `k` largest values (NaN last, ties by lower index first).
fn top_k_indices(v: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    // Stable sort keeps ascending index order among ties.
    idx.sort_by(|&a, &b| cmp_desc_nan_last(v[a], v[b]));
    idx.truncate(k);
    idx
}

/// Fraction of the true top-K architectures that the predictor also places
/// in its top-K: `|topK(pred) ∩ topK(truth)| / K`, in `[0, 1]`.
///
/// "Top" means highest value. Ties are broken by index so the result is
/// deterministic. `k` larger than `n` is clipped to `n` (which trivially
/// gives 1.0). Returns `NaN` if `k == 0`, the input is empty, or lengths
/// differ.
pub fn precision_at_k(pred: &[f64], truth: &[f64], k: usize) -> f64 {
    let n = pred.len();
    if n != truth.len() || n == 0 || k == 0 {
        return f64::NAN;
    }
    let k = k.min(n);
    let mut in_truth = vec![false; n];
    for i in top_k_indices(truth, k) {
        in_truth[i] = true;
    }
    let hits = top_k_indices(pred, k)
        .into_iter()
        .filter(|&i| in_truth[i])
        .count();
    hits as f64 / k as f64
}

/// N@K: the best (smallest, 1-based) true rank among the `k` architectures
/// the predictor rates highest — "if I train the predictor's top-K, how good
/// is the best one I find?". 1 is perfect.
///
/// True ranks use competition ("min") ranking, so architectures with equal
/// truth share the better rank and a predictor is not penalised for an
/// arbitrary tie order. `k` is clipped to `n`. Returns `0` (an impossible
/// rank, used as "undefined") if `k == 0`, the input is empty, or lengths
/// differ.
pub fn n_at_k(pred: &[f64], truth: &[f64], k: usize) -> usize {
    let n = pred.len();
    if n != truth.len() || n == 0 || k == 0 {
        return 0;
    }
    let order = top_k_indices(truth, n);
    let mut true_rank = vec![0usize; n];
    for (pos, &i) in order.iter().enumerate() {
        true_rank[i] =
            if pos > 0 && cmp_desc_nan_last(truth[order[pos - 1]], truth[i]) == Ordering::Equal {
                true_rank[order[pos - 1]]
            } else {
                pos + 1
            };
    }
    top_k_indices(pred, k.min(n))
        .into_iter()
        .map(|i| true_rank[i])
        .min()
        .unwrap_or(0)
}

/// Summary of predictor quality on one evaluation set.
///
/// Serialisable so that runs can be stored and compared later; `NaN` fields
/// serialise as JSON `null` via serde_json.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    pub n: usize,
    pub kendall_tau: f64,
    pub spearman: f64,
    pub pearson: f64,
    pub mae: f64,
    pub rmse: f64,
    pub precision_at_10: f64,
    pub precision_at_100: f64,
    pub n_at_10: usize,
    pub n_at_100: usize,
}

impl Metrics {
    /// Computes every metric, with K clipped to `n` for the top-K ones.
    ///
    /// On a length mismatch `n` is reported as 0 and every metric is
    /// undefined (`NaN` / 0), since no pairing of the two slices is valid.
    pub fn compute(pred: &[f64], truth: &[f64]) -> Metrics {
        let n = if pred.len() == truth.len() {
            pred.len()
        } else {
            0
        };
        Metrics {
            n,
            kendall_tau: kendall_tau_b(pred, truth),
            spearman: spearman(pred, truth),
            pearson: pearson(pred, truth),
            mae: mae(pred, truth),
            rmse: rmse(pred, truth),
            precision_at_10: precision_at_k(pred, truth, 10.min(n)),
            precision_at_100: precision_at_k(pred, truth, 100.min(n)),
            n_at_10: n_at_k(pred, truth, 10.min(n)),
            n_at_100: n_at_k(pred, truth, 100.min(n)),
        }
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16}{}", "n", self.n)?;
        writeln!(f, "{:<16}{:.4}", "kendall_tau", self.kendall_tau)?;
        writeln!(f, "{:<16}{:.4}", "spearman", self.spearman)?;
        writeln!(f, "{:<16}{:.4}", "pearson", self.pearson)?;
        writeln!(f, "{:<16}{:.4}", "mae", self.mae)?;
        writeln!(f, "{:<16}{:.4}", "rmse", self.rmse)?;
        writeln!(f, "{:<16}{:.4}", "precision@10", self.precision_at_10)?;
        writeln!(f, "{:<16}{:.4}", "precision@100", self.precision_at_100)?;
        writeln!(f, "{:<16}{}", "N@10", self.n_at_10)?;
        write!(f, "{:<16}{}", "N@100", self.n_at_100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tau_perfect_and_reversed() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let rev = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert!(close(kendall_tau_b(&x, &x), 1.0));
        assert!(close(kendall_tau_b(&x, &rev), -1.0));
        // Perfect agreement with ties is still exactly 1.
        let t = [1.0, 1.0, 2.0, 3.0, 3.0];
        assert!(close(kendall_tau_b(&t, &t), 1.0));
    }

    #[test]
    fn tau_with_ties_hand_computed() {
        // Pairs: C = 4, D = 0, one x-only tie, one y-only tie, n0 = 6
        // -> 4 / sqrt(5 * 5) = 0.8.
        let x = [1.0, 2.0, 2.0, 3.0];
        let y = [1.0, 3.0, 2.0, 3.0];
        assert!(close(kendall_tau_b(&x, &y), 0.8));
        // C = 3, D = 1, one x-only tie, one y-only tie -> 2 / 5 = 0.4.
        let x = [1.0, 1.0, 2.0, 3.0];
        let y = [2.0, 1.0, 1.0, 3.0];
        assert!(close(kendall_tau_b(&x, &y), 0.4));
        assert!(close(kendall_tau_b_naive(&x, &y), 0.4));
    }

    #[test]
    fn tau_undefined_cases() {
        assert!(kendall_tau_b(&[], &[]).is_nan());
        assert!(kendall_tau_b(&[1.0], &[2.0]).is_nan());
        assert!(kendall_tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(kendall_tau_b(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]).is_nan());
        assert!(kendall_tau_b(&[1.0, 2.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(kendall_tau_b(&[1.0, f64::NAN], &[1.0, 2.0]).is_nan());
        // -0.0 and 0.0 are a tie, not an ordered pair.
        assert!(close(
            kendall_tau_b(&[-0.0, 0.0, 1.0], &[0.0, 1.0, 2.0]),
            2.0 / 6f64.sqrt()
        ));
    }

    #[test]
    fn spearman_pearson_hand_computed() {
        // No ties: d = [0, 1, -1, 0], rho = 1 - 6*2 / (4*15) = 0.8.
        assert!(close(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]),
            0.8
        ));
        // Ties: ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> sqrt(0.9).
        assert!(close(
            spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]),
            0.9f64.sqrt()
        ));
        // sxy = 5, sxx = 2, syy = 114/9 -> 15 / sqrt(228).
        assert!(close(
            pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]),
            15.0 / 228f64.sqrt()
        ));
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!(spearman(&[1.0], &[1.0]).is_nan());
    }

    #[test]
    fn errors_hand_computed() {
        let p = [1.0, 2.0, 3.0];
        let t = [2.0, 2.0, 5.0];
        assert!(close(mae(&p, &t), 1.0));
        assert!(close(rmse(&p, &t), (5.0f64 / 3.0).sqrt()));
        assert!(mae(&[], &[]).is_nan());
        assert!(rmse(&[1.0], &[]).is_nan());
    }

    #[test]
    fn top_k_hand_computed() {
        let pred = [0.9, 0.8, 0.1, 0.5];
        let truth = [1.0, 0.2, 0.9, 0.8];
        // top-2 pred = {0, 1}, top-2 truth = {0, 2}.
        assert!(close(precision_at_k(&pred, &truth, 2), 0.5));
        assert_eq!(n_at_k(&pred, &truth, 1), 1);

        let pred = [0.0, 1.0, 2.0, 3.0];
        let truth = [3.0, 2.0, 1.0, 0.0];
        assert_eq!(n_at_k(&pred, &truth, 1), 4);
        assert_eq!(n_at_k(&pred, &truth, 2), 3);
        assert!(close(precision_at_k(&pred, &truth, 2), 0.0));
        assert!(close(precision_at_k(&pred, &truth, 10), 1.0));

        // Ties broken by index: all-equal pred selects {0, 1}.
        let flat = [5.0; 4];
        assert!(close(precision_at_k(&flat, &[9.0, 8.0, 0.0, 0.0], 2), 1.0));
        // Tied truth shares the better rank.
        assert_eq!(n_at_k(&[0.0, 1.0, 0.0], &[7.0, 7.0, 1.0], 1), 1);
        // NaN predictions are never "top".
        assert_eq!(n_at_k(&[f64::NAN, 0.0], &[1.0, 0.0], 1), 2);

        assert!(precision_at_k(&pred, &truth, 0).is_nan());
        assert!(precision_at_k(&[], &[], 3).is_nan());
        assert_eq!(n_at_k(&[], &[], 3), 0);
        assert_eq!(n_at_k(&[1.0], &[1.0, 2.0], 1), 0);
    }

    #[test]
    fn metrics_compute_and_display() {
        let truth: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let m = Metrics::compute(&truth, &truth);
        assert_eq!(m.n, 30);
        assert!(close(m.kendall_tau, 1.0));
        assert!(close(m.spearman, 1.0));
        assert!(close(m.pearson, 1.0));
        assert!(close(m.mae, 0.0));
        assert!(close(m.precision_at_10, 1.0));
        assert!(close(m.precision_at_100, 1.0)); // K clipped to 30
        assert_eq!((m.n_at_10, m.n_at_100), (1, 1));
        let s = m.to_string();
        assert!(s.contains("kendall_tau     1.0000"), "{s}");
        assert_eq!(s.lines().count(), 10);

        let json = serde_json::to_string(&m).expect("serialize");
        let back: Metrics = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.n, 30);

        let bad = Metrics::compute(&[1.0, 2.0], &[1.0]);
        assert_eq!(bad.n, 0);
        assert!(bad.kendall_tau.is_nan());
        let empty = Metrics::compute(&[], &[]);
        assert_eq!((empty.n, empty.n_at_10), (0, 0));
    }

    #[test]
    fn large_input_runs() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 50_000;
        let truth: Vec<f64> = (0..n).map(|_| rng.random_range(0..1000) as f64).collect();
        let pred: Vec<f64> = truth
            .iter()
            .map(|t| t + rng.random_range(-200.0..200.0))
            .collect();
        let tau = kendall_tau_b(&pred, &truth);
        assert!(tau > 0.0 && tau <= 1.0);
        let m = Metrics::compute(&pred, &truth);
        assert_eq!(m.n, n);
    }

    /// Vectors drawn from a tiny integer range so ties are very common.
    fn tied_pair() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
        (0usize..200).prop_flat_map(|n| {
            (
                proptest::collection::vec((0i32..5).prop_map(f64::from), n),
                proptest::collection::vec((0i32..5).prop_map(f64::from), n),
            )
        })
    }

    proptest! {
        #[test]
        fn tau_fast_matches_naive((x, y) in tied_pair()) {
            let fast = kendall_tau_b(&x, &y);
            let slow = kendall_tau_b_naive(&x, &y);
            prop_assert!(
                (fast.is_nan() && slow.is_nan()) || (fast - slow).abs() < 1e-9,
                "fast {fast} naive {slow}"
            );
        }

        #[test]
        fn spearman_bounded((x, y) in tied_pair()) {
            let r = spearman(&x, &y);
            prop_assert!(r.is_nan() || (-1.0..=1.0).contains(&r));
        }

        #[test]
        fn top_k_bounded((x, y) in tied_pair(), k in 1usize..250) {
            prop_assume!(!x.is_empty());
            let p = precision_at_k(&x, &y, k);
            prop_assert!((0.0..=1.0).contains(&p));
            let r = n_at_k(&x, &y, k);
            prop_assert!((1..=x.len()).contains(&r));
        }
    }
}
