//! How good a ranking of customers by risk is (DOMAIN.md §4 "Report").
//!
//! Every function takes `scores` (higher = riskier) and `bad` labels of the same length.
//! Ties are handled the same way everywhere: tied scores form one group, so the order
//! of the input never changes a figure (except top-k capture, which cuts inside a tie
//! group by input order, and input order is fixed by customer and date).

use serde::{Deserialize, Serialize};

/// Area under the ROC curve: the probability that a random bad scores above a random
/// good (ties count half). `None` without both classes.
pub fn auc(scores: &[f64], bad: &[bool]) -> Option<f64> {
    Ranking::new(scores, bad).auc()
}

/// Kolmogorov–Smirnov statistic: the largest gap between the cumulative shares of bads
/// and goods when walking down the ranking (tie groups taken whole).
pub fn ks(scores: &[f64], bad: &[bool]) -> Option<f64> {
    Ranking::new(scores, bad).ks()
}

/// A ranking sorted once (row indices riskiest first, ties in input order), so that its
/// figures at millions of rows do not each sort it again.
pub struct Ranking<'a> {
    scores: &'a [f64],
    bad: &'a [bool],
    riskiest_first: Vec<usize>,
}

impl<'a> Ranking<'a> {
    pub fn new(scores: &'a [f64], bad: &'a [bool]) -> Ranking<'a> {
        Ranking {
            scores,
            bad,
            riskiest_first: descending(scores),
        }
    }

    /// Row indices, riskiest first (ties in input order).
    pub fn order(&self) -> &[usize] {
        &self.riskiest_first
    }

    /// [`auc`].
    pub fn auc(&self) -> Option<f64> {
        let (scores, bad, order) = (self.scores, self.bad, &self.riskiest_first);
        let (n_bad, n_good) = counts(bad);
        if n_bad == 0 || n_good == 0 {
            return None;
        }
        // Mann–Whitney U with mid-ranks for ties, ranks from the lowest score up (a tie
        // group's order inside does not matter: each of its bads adds the same mid-rank).
        let n = order.len();
        let ascending = |i: usize| order[n - 1 - i];
        let mut rank_sum_bad = 0.0;
        let mut i = 0;
        while i < n {
            let mut j = i;
            while j + 1 < n && scores[ascending(j + 1)] == scores[ascending(i)] {
                j += 1;
            }
            let mid_rank = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                if bad[ascending(k)] {
                    rank_sum_bad += mid_rank;
                }
            }
            i = j + 1;
        }
        let u = rank_sum_bad - (n_bad * (n_bad + 1)) as f64 / 2.0;
        Some(u / (n_bad as f64 * n_good as f64))
    }

    /// [`ks`].
    pub fn ks(&self) -> Option<f64> {
        let (scores, bad, order) = (self.scores, self.bad, &self.riskiest_first);
        let (n_bad, n_good) = counts(bad);
        if n_bad == 0 || n_good == 0 {
            return None;
        }
        let (mut cum_bad, mut cum_good, mut best) = (0usize, 0usize, 0.0f64);
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j < order.len() && scores[order[j]] == scores[order[i]] {
                if bad[order[j]] {
                    cum_bad += 1;
                } else {
                    cum_good += 1;
                }
                j += 1;
            }
            let gap = cum_bad as f64 / n_bad as f64 - cum_good as f64 / n_good as f64;
            best = best.max(gap.abs());
            i = j;
        }
        Some(best)
    }

    /// [`capture`].
    pub fn capture(&self, share: f64) -> Option<f64> {
        let (n_bad, _) = counts(self.bad);
        if n_bad == 0 {
            return None;
        }
        let take = ((self.scores.len() as f64) * share).ceil() as usize;
        let caught = self
            .riskiest_first
            .iter()
            .take(take)
            .filter(|&&k| self.bad[k])
            .count();
        Some(caught as f64 / n_bad as f64)
    }
}

/// Mean squared error of probabilities against the 0/1 outcome.
pub fn brier(probabilities: &[f64], bad: &[bool]) -> Option<f64> {
    if probabilities.is_empty() {
        return None;
    }
    let sum: f64 = probabilities
        .iter()
        .zip(bad)
        .map(|(p, &b)| {
            let y = if b { 1.0 } else { 0.0 };
            (p - y) * (p - y)
        })
        .sum();
    Some(sum / probabilities.len() as f64)
}

/// Share of all bads found in the riskiest `share` of rows (rounded up).
pub fn capture(scores: &[f64], bad: &[bool], share: f64) -> Option<f64> {
    Ranking::new(scores, bad).capture(share)
}

/// One tenth of the population, riskiest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decile {
    /// 1 = the riskiest tenth.
    pub decile: usize,
    pub rows: usize,
    pub bads: usize,
    /// Average predicted probability.
    pub mean_predicted: f64,
    /// Share of bads observed.
    pub observed_rate: f64,
}

/// Calibration by decile of the ranking: predicted against observed bad rates.
pub fn calibration(probabilities: &[f64], bad: &[bool]) -> Vec<Decile> {
    let order = descending(probabilities);
    let n = order.len();
    (0..10)
        .filter_map(|d| {
            let (from, to) = (d * n / 10, (d + 1) * n / 10);
            let slice = &order[from..to];
            (!slice.is_empty()).then(|| {
                let bads = slice.iter().filter(|&&k| bad[k]).count();
                Decile {
                    decile: d + 1,
                    rows: slice.len(),
                    bads,
                    mean_predicted: slice.iter().map(|&k| probabilities[k]).sum::<f64>()
                        / slice.len() as f64,
                    observed_rate: bads as f64 / slice.len() as f64,
                }
            })
        })
        .collect()
}

/// Bin edges for the PSI: the training scores' deciles (9 inner edges).
pub fn psi_edges(reference: &[f64]) -> Vec<f64> {
    let mut sorted = reference.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .filter_map(|d| sorted.get(d * sorted.len() / 10).copied())
        .collect();
    edges.dedup();
    edges
}

/// Share of `scores` in each bin (`x < edges[0]`, `edges[0] <= x < edges[1]`, ...).
pub fn bin_shares(scores: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    for &s in scores {
        counts[edges.partition_point(|&e| e <= s)] += 1;
    }
    let n = scores.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// Population stability index between the shares of a reference (training) population
/// and a new one over the same bins: Σ (new − ref) · ln(new / ref), empty bins floored at
/// 0.0001. Below 0.1 stable, 0.1–0.25 some shift, above 0.25 a different population.
pub fn psi(reference_shares: &[f64], new_shares: &[f64]) -> f64 {
    reference_shares
        .iter()
        .zip(new_shares)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(1e-4), a.max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// How a PSI value reads.
pub fn psi_verdict(psi: f64) -> &'static str {
    if psi < 0.1 {
        "stable"
    } else if psi < 0.25 {
        "some shift"
    } else {
        "population changed: retrain"
    }
}

fn counts(bad: &[bool]) -> (usize, usize) {
    let n_bad = bad.iter().filter(|&&b| b).count();
    (n_bad, bad.len() - n_bad)
}

/// Row indices by descending score, ties in input order.
fn descending(scores: &[f64]) -> Vec<usize> {
    sorted(scores, |a, b| b.total_cmp(&a))
}

/// Row indices ordered by `by` on the scores, ties in input order. The (score, index)
/// pairs are sorted side by side — no lookup into the scores per comparison, which at
/// millions of rows is what a sort of bare indices spends its time on — and unstably, as
/// the index makes every key unique (the same order as a stable sort).
fn sorted(scores: &[f64], by: fn(f64, f64) -> std::cmp::Ordering) -> Vec<usize> {
    let mut pairs: Vec<(f64, usize)> = scores.iter().copied().zip(0..).collect();
    pairs.sort_unstable_by(|a, b| by(a.0, b.0).then(a.1.cmp(&b.1)));
    pairs.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sorted_ranking_gives_the_pairwise_figures() {
        // Many ties, both classes, in no particular order.
        let n = 500;
        let scores: Vec<f64> = (0..n).map(|i| ((i * 37) % 23) as f64 / 7.0).collect();
        let bad: Vec<bool> = (0..n).map(|i| (i * 11) % 5 == 0).collect();
        let ranking = Ranking::new(&scores, &bad);
        let (mut above, mut pairs) = (0.0, 0.0);
        for b in (0..n).filter(|&i| bad[i]) {
            for g in (0..n).filter(|&i| !bad[i]) {
                pairs += 1.0;
                above += match scores[b].total_cmp(&scores[g]) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        let auc = ranking.auc().unwrap();
        assert!(
            (auc - above / pairs).abs() < 1e-12,
            "{auc} against {}",
            above / pairs
        );
        // Riskiest first, ties in input order; capture cuts there.
        let order = ranking.order();
        assert!(
            order
                .windows(2)
                .all(|w| scores[w[0]] > scores[w[1]]
                    || (scores[w[0]] == scores[w[1]] && w[0] < w[1]))
        );
        let take = (n as f64 * 0.2).ceil() as usize;
        let caught = order[..take].iter().filter(|&&k| bad[k]).count() as f64;
        let bads = bad.iter().filter(|b| **b).count() as f64;
        assert_eq!(ranking.capture(0.2), Some(caught / bads));
    }

    #[test]
    fn auc_counts_pairs_and_half_ties() {
        // Bads 0.9 and 0.4, goods 0.5, 0.4, 0.1: pairs (bad > good) = 3 + 1 + half a tie.
        let scores = [0.9, 0.5, 0.4, 0.4, 0.1];
        let bad = [true, false, true, false, false];
        let a = auc(&scores, &bad).unwrap();
        assert!((a - 4.5 / 6.0).abs() < 1e-12, "{a}");
        // Order of rows does not matter.
        let a2 = auc(
            &[0.1, 0.4, 0.4, 0.5, 0.9],
            &[false, false, true, false, true],
        )
        .unwrap();
        assert_eq!(a, a2);
        assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
        // A perfect and a reversed ranking.
        assert_eq!(auc(&[2.0, 1.0], &[true, false]), Some(1.0));
        assert_eq!(auc(&[1.0, 2.0], &[true, false]), Some(0.0));
    }

    #[test]
    fn ks_is_the_largest_gap() {
        // Walking down: 0.9 bad (1/2, 0) gap .5; 0.5 good (1/2, 1/3); 0.4 tie (1, 2/3)...
        let scores = [0.9, 0.5, 0.4, 0.4, 0.1];
        let bad = [true, false, true, false, false];
        assert!((ks(&scores, &bad).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(ks(&[3.0, 2.0, 1.0], &[true, false, false]), Some(1.0));
    }

    #[test]
    fn brier_capture_and_calibration() {
        assert_eq!(brier(&[1.0, 0.0], &[true, false]), Some(0.0));
        assert!((brier(&[0.5, 0.5], &[true, false]).unwrap() - 0.25).abs() < 1e-12);
        // 10 rows, bads at the two highest and one low score: top 10 % = 1 row.
        let scores: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let mut bad = vec![false; 10];
        bad[9] = true;
        bad[8] = true;
        bad[0] = true;
        assert!((capture(&scores, &bad, 0.1).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((capture(&scores, &bad, 0.2).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let probabilities: Vec<f64> = scores.iter().map(|s| s / 10.0).collect();
        let deciles = calibration(&probabilities, &bad);
        assert_eq!(deciles.len(), 10);
        assert_eq!(deciles[0].bads, 1);
        assert!((deciles[0].mean_predicted - 0.9).abs() < 1e-12);
        assert_eq!(deciles[9].observed_rate, 1.0);
    }

    #[test]
    fn psi_is_zero_for_the_same_population_and_grows_with_shift() {
        let train: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let edges = psi_edges(&train);
        assert_eq!(edges.len(), 9);
        let shares = bin_shares(&train, &edges);
        assert!(shares.iter().all(|s| (s - 0.1).abs() < 1e-12));
        assert!(psi(&shares, &shares).abs() < 1e-12);
        let shifted: Vec<f64> = train.iter().map(|s| (s + 0.3).min(0.999)).collect();
        let p = psi(&shares, &bin_shares(&shifted, &edges));
        assert!(p > 0.25, "{p}");
        assert_eq!(psi_verdict(p), "population changed: retrain");
    }
}
