//! Choosing the L2 strength of the logistic regression by cross-validation.
//!
//! - **Grid**: the ten values scikit-learn's `LogisticRegressionCV` tries by default,
//!   `C = logspace(−4, 4, 10)`, as `alpha = 1 / C` (arq's `alpha` is the weight of
//!   `½‖w‖²` against the *summed* log-loss, which is scikit-learn's `1 / C`).
//! - **Folds** (k = 5) of the training rows: by time when the rows carry periods (the
//!   distinct periods in order, cut into k consecutive blocks, so a fold never shares a
//!   snapshot with the rows it is scored against; with fewer than k periods, one fold per
//!   period), otherwise stratified (each class's rows dealt to the folds in a fixed
//!   pseudo-random order, so every fold has the table's bad rate).
//! - **Rule**: the mean AUC decides where it tells the values apart, the mean log-loss
//!   where it does not: every value whose mean AUC is within one standard error of the
//!   best mean AUC (the best value's standard deviation over the folds / √folds) counts
//!   as equally good, and among those the lowest mean log-loss on the held-out folds wins
//!   (then the stronger penalty). Why not the AUC alone: it only sees the ranking, which
//!   hardly moves along much of the grid (with one feature, not at all), so its best
//!   value is often a strong penalty that wins by noise and shrinks every PD towards the
//!   average bad rate — on 400 rows of a known 3-feature model, the AUC alone chose
//!   alpha 1292 (held-out log-loss 0.588) over alpha 2.8 (0.486) for 0.004 of AUC with a
//!   fold-to-fold deviation of 0.05. Queues and credit limits use the PDs as
//!   probabilities, so the log-loss (a proper scoring rule) settles what the AUC cannot.
//! - The fit along the grid goes from the strongest penalty to the weakest, each fit
//!   starting from the previous one's coefficients (as scikit-learn's path does).
//!
//! For the logistic regression, the encoding and the standardization are those fitted on
//! all the training rows (not re-fitted in each fold): medians, levels, means and
//! deviations carry next to no information about the labels, and scikit-learn's
//! comparison (benches/) is set up the same way. The scorecard's bins and weights of
//! evidence are learnt from the labels, so they are learnt again inside each fold
//! ([`choose_alpha_with`]).

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::logistic::{self, Settings};
use crate::metrics;

/// `alpha = 1 / C` for scikit-learn's `Cs = 10`, strongest first.
pub fn alpha_grid() -> Vec<f64> {
    (0..10)
        .map(|i| 1.0 / 10f64.powf(-4.0 + 8.0 * i as f64 / 9.0))
        .collect()
}

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;

/// How one L2 strength did over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaScore {
    pub alpha: f64,
    /// Mean and standard deviation (over the folds) of the AUC on the held-out fold, and
    /// the folds that had both classes.
    pub mean_auc: f64,
    pub sd_auc: f64,
    pub folds: usize,
    /// Mean (over the folds) of the held-out fold's mean log-loss.
    pub mean_log_loss: f64,
}

/// The cross-validation behind the chosen L2 strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regularization {
    /// Every value tried, strongest first.
    pub grid: Vec<AlphaScore>,
    pub chosen: f64,
    pub folds: usize,
    /// "snapshots" (folds by time) or "stratified rows".
    pub folds_by: String,
}

/// The fold of each row (0..folds) and the number of folds.
pub fn assign_folds(bad: &[bool], periods: Option<&[i32]>) -> (Vec<usize>, usize, &'static str) {
    if let Some(periods) = periods {
        let mut distinct: Vec<i32> = periods.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() >= 2 {
            let k = FOLDS.min(distinct.len());
            let m = distinct.len();
            let fold_of_period = |p: &i32| {
                let i = distinct.binary_search(p).expect("a listed period");
                i * k / m
            };
            return (periods.iter().map(fold_of_period).collect(), k, "snapshots");
        }
    }
    // Stratified: each class in a fixed pseudo-random order, dealt round the folds.
    let mut fold = vec![0; bad.len()];
    for class in [false, true] {
        let mut rows: Vec<(u64, usize)> = (0..bad.len())
            .filter(|&r| bad[r] == class)
            .map(|r| (mix(r as u64), r))
            .collect();
        rows.sort_unstable();
        for (i, (_, r)) in rows.into_iter().enumerate() {
            fold[r] = i % FOLDS;
        }
    }
    (fold, FOLDS, "stratified rows")
}

/// One fold of the cross-validation: its training and held-out rows and their labels.
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub train_bad: Vec<bool>,
    pub test_bad: Vec<bool>,
}

/// The folds of [`assign_folds`] that can be used — held-out rows, and both classes in
/// the training rows — with the number of folds and what they are cut by.
pub fn usable_folds(bad: &[bool], periods: Option<&[i32]>) -> (Vec<Fold>, usize, &'static str) {
    let (fold, k, folds_by) = assign_folds(bad, periods);
    let folds = (0..k)
        .filter_map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..bad.len()).partition(|&r| fold[r] == f);
            let train_bad: Vec<bool> = train.iter().map(|&r| bad[r]).collect();
            let test_bad: Vec<bool> = test.iter().map(|&r| bad[r]).collect();
            let bads = train_bad.iter().filter(|&&b| b).count();
            (!test.is_empty() && bads > 0 && bads < train.len()).then_some(Fold {
                train,
                test,
                train_bad,
                test_bad,
            })
        })
        .collect();
    (folds, k, folds_by)
}

/// The lowest mean AUC that ties with the best: the best minus its standard error.
fn tie_floor(scores: &[AlphaScore]) -> f64 {
    let mut top = &scores[0];
    for s in scores {
        if s.mean_auc > top.mean_auc {
            top = s;
        }
    }
    top.mean_auc - top.sd_auc / (top.folds as f64).sqrt()
}

/// Mean log-loss of log-odds `eta` against the labels.
fn log_loss(eta: &[f64], bad: &[bool]) -> f64 {
    let total: f64 = eta
        .iter()
        .zip(bad)
        .map(|(&e, &b)| {
            let y = if b { 1.0 } else { 0.0 };
            e.max(0.0) + (-e.abs()).exp().ln_1p() - y * e
        })
        .sum();
    total / eta.len() as f64
}

/// SplitMix64's finalizer: a fixed shuffle key for a row number.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Cross-validates the grid on standardized rows `z` and picks the L2 strength.
pub fn choose_alpha(
    z: ArrayView2<f64>,
    bad: &[bool],
    periods: Option<&[i32]>,
    max_iterations: usize,
    gradient_tolerance: f64,
) -> Result<Regularization> {
    choose_alpha_with(
        bad,
        periods,
        max_iterations,
        gradient_tolerance,
        &mut |train, test| Ok((z.select(Axis(0), train), z.select(Axis(0), test))),
    )
}

/// Makes a fold's training and held-out matrices from their row numbers.
pub type FoldMatrices<'a> =
    dyn FnMut(&[usize], &[usize]) -> Result<(Array2<f64>, Array2<f64>)> + 'a;

/// [`choose_alpha`] where each fold's matrices are made by `matrices(train, test)` from
/// the fold's row numbers: for an encoding learnt from the labels (the scorecard's
/// weights of evidence), which must be learnt again inside each fold, or the held-out
/// fold's labels leak into its own features.
pub fn choose_alpha_with(
    bad: &[bool],
    periods: Option<&[i32]>,
    max_iterations: usize,
    gradient_tolerance: f64,
    matrices: &mut FoldMatrices,
) -> Result<Regularization> {
    let (folds, k, folds_by) = usable_folds(bad, periods);
    let grid = alpha_grid();
    // aucs[a][f], losses[a][f]: AUC and mean log-loss of grid value a on held-out fold f
    // (folds with one class only left out).
    let mut aucs = vec![Vec::with_capacity(k); grid.len()];
    let mut losses = vec![Vec::with_capacity(k); grid.len()];
    for Fold {
        train,
        test,
        train_bad,
        test_bad,
    } in &folds
    {
        let (z_train, z_test) = matrices(train, test)?;
        let mut start: Option<(Vec<f64>, f64)> = None;
        for (a, &alpha) in grid.iter().enumerate() {
            let fitted = logistic::fit(
                z_train.view(),
                train_bad,
                Settings {
                    alpha,
                    max_iterations,
                    gradient_tolerance,
                },
                start.as_ref().map(|(c, i)| (c.as_slice(), *i)),
            )?;
            let scores = logistic::log_odds(z_test.view(), &fitted.coefficients, fitted.intercept);
            if let Some(auc) = metrics::auc(&scores, test_bad) {
                aucs[a].push(auc);
                losses[a].push(log_loss(&scores, test_bad));
            }
            start = Some((fitted.coefficients, fitted.intercept));
        }
    }
    let mut scores = Vec::with_capacity(grid.len());
    for ((alpha, values), loss) in grid.iter().zip(&aucs).zip(&losses) {
        if values.is_empty() {
            return Err(ModelError::Training(format!(
                "cross-validation: no fold of the {} training rows holds both good and bad \
                 rows; give the L2 strength with --alpha",
                bad.len()
            )));
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        scores.push(AlphaScore {
            alpha: *alpha,
            mean_auc: mean,
            sd_auc: var.sqrt(),
            folds: values.len(),
            mean_log_loss: loss.iter().sum::<f64>() / loss.len() as f64,
        });
    }
    let floor = tie_floor(&scores);
    // Strongest first: a later tie must have a strictly lower log-loss to be chosen.
    let mut best: Option<usize> = None;
    for (i, s) in scores.iter().enumerate() {
        if s.mean_auc >= floor && best.is_none_or(|b| s.mean_log_loss < scores[b].mean_log_loss) {
            best = Some(i);
        }
    }
    let best = best.expect("the best AUC is a tie of itself");
    Ok(Regularization {
        chosen: scores[best].alpha,
        grid: scores,
        folds: k,
        folds_by: folds_by.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_scikit_learns() {
        let grid = alpha_grid();
        assert_eq!(grid.len(), 10);
        assert!((grid[0] / 1e4 - 1.0).abs() < 1e-12, "{grid:?}");
        assert!((grid[9] / 1e-4 - 1.0).abs() < 1e-12, "{grid:?}");
        // C = 10^(-4 + 8/9 · i): alpha 1/C = 2.7826 for i = 4.
        assert!((grid[4] - 2.782_559_402).abs() < 1e-6, "{grid:?}");
    }

    #[test]
    fn folds_keep_the_bad_rate_or_whole_snapshots() {
        let bad: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let (fold, k, by) = assign_folds(&bad, None);
        assert_eq!((k, by), (5, "stratified rows"));
        for f in 0..5 {
            let rows = fold.iter().filter(|&&x| x == f).count();
            let bads = (0..1000).filter(|&r| fold[r] == f && bad[r]).count();
            assert_eq!((rows, bads), (200, 20));
        }
        // Seven periods: five blocks of consecutive periods, a period never split.
        let periods: Vec<i32> = (0..1000).map(|i| (i % 7) * 31).collect();
        let (fold, k, by) = assign_folds(&bad, Some(&periods));
        assert_eq!((k, by), (5, "snapshots"));
        for p in 0..7 {
            let folds: std::collections::BTreeSet<usize> = (0..1000)
                .filter(|&r| periods[r] == p * 31)
                .map(|r| fold[r])
                .collect();
            assert_eq!(folds.len(), 1);
        }
        assert!((0..999).all(|r| (periods[r] < periods[r + 1]) <= (fold[r] <= fold[r + 1])));
        // Three periods: three folds.
        let periods: Vec<i32> = (0..1000).map(|i| i % 3).collect();
        assert_eq!(assign_folds(&bad, Some(&periods)).1, 3);
    }

    fn choose(x: &ndarray::Array2<f64>, y: &[bool]) -> Regularization {
        choose_alpha(x.view(), y, None, 500, 1e-6).unwrap()
    }

    #[test]
    fn a_known_model_is_found_with_an_interior_penalty() {
        let truth = [1.0, -0.5, 0.25, 0.8, 0.0];
        let (x, y) = crate::logistic::tests::sample(3000, (-1.0, &truth), 5);
        let r = choose(&x, &y);
        let grid = alpha_grid();
        assert!(r.chosen < grid[0] && r.chosen > grid[9], "{r:?}");
        let fitted = crate::logistic::fit(
            x.view(),
            &y,
            Settings {
                alpha: r.chosen,
                max_iterations: 500,
                gradient_tolerance: 1e-8,
            },
            None,
        )
        .unwrap();
        for (c, t) in fitted.coefficients.iter().zip(truth) {
            assert!((c - t).abs() < 0.15, "{r:?} {fitted:?}");
        }
        assert!((fitted.intercept + 1.0).abs() < 0.15, "{fitted:?}");
    }

    #[test]
    fn noise_columns_get_a_stronger_penalty() {
        let truth = [0.8, -0.6, 0.4];
        let (x, y) = crate::logistic::tests::sample(400, (-1.0, &truth), 9);
        let clean = choose(&x, &y);
        // The same rows with 60 columns of noise beside the three that matter.
        let mut noisy = ndarray::Array2::zeros((400, 63));
        noisy.slice_mut(ndarray::s![.., ..3]).assign(&x);
        let (noise, _) = crate::logistic::tests::sample(400, (0.0, &[0.0; 60]), 77);
        noisy.slice_mut(ndarray::s![.., 3..]).assign(&noise);
        let with_noise = choose(&noisy, &y);
        assert!(
            with_noise.chosen > clean.chosen,
            "{clean:?}\n{with_noise:?}"
        );
    }

    #[test]
    fn the_choice_is_the_best_log_loss_among_aucs_within_a_standard_error() {
        let (x, y) = crate::logistic::tests::sample(2000, (-1.0, &[1.0, -1.0]), 3);
        let r = choose(&x, &y);
        let floor = tie_floor(&r.grid);
        let top = r.grid.iter().map(|s| s.mean_auc).fold(f64::MIN, f64::max);
        assert!(floor < top);
        let chosen = r.grid.iter().find(|s| s.alpha == r.chosen).unwrap();
        assert!(chosen.mean_auc >= floor);
        for s in &r.grid {
            if s.mean_auc >= floor {
                assert!(chosen.mean_log_loss <= s.mean_log_loss, "{r:?}");
            }
        }
    }
}
