//! Training: the candidates (L2 logistic regression on standardized features, its strength
//! chosen by cross-validation; the binned scorecard; a random forest of linfa decision
//! trees), the champion rule, the max-DPD baseline, the validation report and the refit of
//! the champion on every labelled row.
//!
//! The split is out of time when rows carry a period (a snapshot date): the latest
//! third of the periods validate, the earlier ones train. Rows without periods (a plain
//! table) validate on a fixed pseudo-random third of the rows.

use datafusion::arrow::array::RecordBatch;
use ndarray::{Array2, ArrayView2, Axis};

use arq_udfs::dates;

use crate::binning::{BinnedFeature, BinnedScorecard, MIN_BIN_SHARE};
use crate::encoding::{Feature, Scaler, design_matrix};
use crate::error::{ModelError, Result};
use crate::forest::{Forest, ForestSettings};
use crate::logistic as fitter;
use crate::metrics;
use crate::model::{
    Champion, FORMAT_VERSION, Fingerprint, ModelKind, Refit, RiskModel, Scorecard, TrainingWindow,
    logistic,
};
use crate::report::InformationValue;
use crate::report::{RankingMetrics, Report};
use crate::tuning;

/// Settings of a training run (validated by [`TrainOptions::validate`]).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub scorecard: Scorecard,
    /// L2 penalty of the logistic regression (the weight of `½‖w‖²` against the summed
    /// log-loss: scikit-learn's `1 / C`); `None` chooses it by cross-validation
    /// ([`crate::tuning`]).
    pub alpha: Option<f64>,
    /// After validation, fit the shipped model again on every labelled row (training and
    /// validation) with the chosen settings.
    pub refit: bool,
    /// Ship this candidate whatever the validation says (`None`: [`Selection::choose`]'s
    /// rule).
    pub champion: Option<Champion>,
    /// L-BFGS iterations at most.
    pub max_iterations: usize,
    /// L-BFGS stops when the largest component of the gradient of the *mean* log-loss is
    /// below this (scikit-learn's lbfgs rule, with its default tol 1e-4).
    pub gradient_tolerance: f64,
    /// Trees in the forest candidate, and their depth.
    pub trees: usize,
    pub tree_depth: usize,
    /// Seed of the forest's bootstrap.
    pub seed: u64,
    /// Share of the periods (or rows) that validate.
    pub validation_share: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            scorecard: Scorecard::default(),
            alpha: None,
            refit: true,
            champion: None,
            max_iterations: 200,
            gradient_tolerance: 1e-4,
            trees: 50,
            tree_depth: 6,
            seed: 42,
            validation_share: 1.0 / 3.0,
        }
    }
}

impl TrainOptions {
    /// How the forest candidate grows.
    pub fn forest(&self) -> ForestSettings {
        ForestSettings {
            trees: self.trees,
            depth: self.tree_depth,
            seed: self.seed,
        }
    }

    /// Checks every setting once, before any work.
    pub fn validate(&self) -> Result<()> {
        self.scorecard.validate()?;
        if let Some(alpha) = self.alpha
            && !(alpha.is_finite() && alpha >= 0.0)
        {
            return Err(ModelError::Training(format!(
                "alpha must be zero or more, got {alpha}"
            )));
        }
        if !(self.validation_share > 0.0 && self.validation_share < 1.0) {
            return Err(ModelError::Training(format!(
                "the validation share must be between 0 and 1, got {}",
                self.validation_share
            )));
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return Err(ModelError::Training(format!(
                "the gradient tolerance must be above zero, got {}",
                self.gradient_tolerance
            )));
        }
        if self.trees == 0 || self.tree_depth == 0 || self.max_iterations == 0 {
            return Err(ModelError::Training(
                "trees, tree depth and iterations must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Rows to learn from.
#[derive(Debug, Clone)]
pub struct LabelledData {
    /// Where they come from (a warehouse folder or a file), for the artifact.
    pub source: String,
    pub kind: ModelKind,
    /// Name of the label.
    pub label: String,
    /// Columns kept beside the scores but not used as features.
    pub id_columns: Vec<String>,
    /// The feature columns only.
    pub features: RecordBatch,
    /// The label of each row: went bad.
    pub bad: Vec<bool>,
    /// The period of each row (days since 1970-01-01) for an out-of-time split.
    pub periods: Option<Vec<i32>>,
    /// A score a team would rank by without a model (higher = riskier), and its name.
    pub baseline: Option<(String, Vec<f64>)>,
    /// Reason texts (high, low) for a feature name.
    pub reason_texts: fn(&str) -> Option<(&'static str, &'static str)>,
}

/// The stages a training run goes through, for a progress display.
pub const STAGES: [&str; 7] = [
    "encoding features",
    "choosing the L2 strength",
    "fitting the logistic regression",
    "fitting the binned scorecard",
    "fitting the random forest",
    "validating",
    "refitting on all labelled rows",
];

/// A binned scorecard within this much out-of-sample AUC of the best candidate is the
/// champion: credit staff read its points and reasons bin by bin.
pub const SCORECARD_MARGIN: f64 = 0.005;

/// Trains the candidates on `data` and returns the champion's artifact (with the report).
/// `progress` is called with the index of each stage as it starts.
///
/// Candidates: the logistic regression on standardized design columns (its L2 strength
/// chosen by cross-validation on the training rows unless given), the binned scorecard
/// ([`crate::binning`], its strength always by cross-validation) and the random forest
/// ([`crate::forest`]). Each is fitted on the training rows and validated on the held-out
/// rows (the report's figures). The champion ([`Selection::choose`]): the binned
/// scorecard when its out-of-sample AUC (the cross-validation's pooled with the
/// validation rows', the forest cross-validated on the same folds) is within
/// [`SCORECARD_MARGIN`] of the best candidate's, else the best candidate. Then, unless
/// `refit` is off, the shipped model — encoding, standardization, bins and coefficients
/// of the logistic regression and the scorecard, and the forest when it won — is fitted
/// again on every labelled row with the same settings, and its training fingerprint
/// covers them all.
pub fn train(
    data: &LabelledData,
    options: &TrainOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RiskModel> {
    options.validate()?;
    progress(0);
    let (split, train_bads) = split_rows(data, options)?;
    let features = fit_features(data, &split.train)?;
    let raw = design_matrix(&features, data.features.columns())?;
    let scaler = Scaler::fit(&raw.select(Axis(0), &split.train));
    let mut z = raw.clone();
    scaler.transform(&mut z);
    let z_train = z.select(Axis(0), &split.train);
    let z_valid = z.select(Axis(0), &split.validation);
    let y_train: Vec<bool> = split.train.iter().map(|&r| data.bad[r]).collect();
    let y_valid: Vec<bool> = split.validation.iter().map(|&r| data.bad[r]).collect();
    let train_periods: Option<Vec<i32>> = data
        .periods
        .as_ref()
        .map(|p| split.train.iter().map(|&r| p[r]).collect());

    progress(1);
    let regularization = match options.alpha {
        Some(_) => None,
        None => Some(tuning::choose_alpha(
            z_train.view(),
            &y_train,
            train_periods.as_deref(),
            options.max_iterations,
            options.gradient_tolerance,
        )?),
    };
    let alpha = options
        .alpha
        .or(regularization.as_ref().map(|r| r.chosen))
        .expect("given or chosen");

    progress(2);
    let (coefficients, intercept) = fit_logistic(z_train.view(), &y_train, alpha, options)?;
    let logistic_train = probabilities(&z_train, &coefficients, intercept);
    let logistic_valid = probabilities(&z_valid, &coefficients, intercept);

    progress(3);
    let (binned, binned_regularization) =
        fit_binned(data, &split.train, train_periods.as_deref(), None, options)?;
    let binned_pd = binned
        .log_odds(data.features.columns())?
        .into_iter()
        .map(logistic)
        .collect::<Vec<f64>>();
    let binned_train: Vec<f64> = split.train.iter().map(|&r| binned_pd[r]).collect();
    let binned_valid: Vec<f64> = split.validation.iter().map(|&r| binned_pd[r]).collect();

    progress(4);
    let forest = Forest::fit(z_train.view(), &y_train, options.forest())?;
    let forest_train = forest.probabilities(z_train.view());
    let forest_valid = forest.probabilities(z_valid.view());
    // Its cross-validation on the same folds as the others', for a like-for-like pooled
    // AUC (not with --alpha: then every candidate compares on the validation rows).
    let forest_cv = match (&regularization, &binned_regularization) {
        (Some(_), Some(_)) => Some(forest_cv(
            z_train.view(),
            &y_train,
            train_periods.as_deref(),
            options,
        )?),
        _ => None,
    };

    progress(5);
    // Candidates compare on every out-of-sample row there is: the cross-validation's mean
    // AUC on the training rows (at the chosen strength) pooled, by rows, with the AUC on
    // the validation rows. One held-out third alone is too noisy on small tables (on
    // 300 validation rows the scorecard led the logistic regression by 0.019 and trailed
    // it by 0.027 on the test rows, benches/cv_vs_sklearn.py).
    // With `--alpha` the logistic regression has no cross-validation: then both compare
    // on the validation rows alone, like for like.
    let (n_train, n_valid) = (split.train.len() as f64, split.validation.len() as f64);
    let both_validated = regularization.is_some() && binned_regularization.is_some();
    let pooled = |cv: Option<&tuning::Regularization>, valid: Option<f64>| {
        let valid = valid?;
        Some(
            match cv
                .filter(|_| both_validated)
                .and_then(|r| r.grid.iter().find(|s| s.alpha == r.chosen))
            {
                Some(s) => (s.mean_auc * n_train + valid * n_valid) / (n_train + n_valid),
                None => valid,
            },
        )
    };
    let mut selection = Selection::choose(
        pooled(
            regularization.as_ref(),
            metrics::auc(&logistic_valid, &y_valid),
        ),
        pooled(
            binned_regularization.as_ref(),
            metrics::auc(&binned_valid, &y_valid),
        ),
        match (forest_cv, metrics::auc(&forest_valid, &y_valid)) {
            (Some(cv), Some(valid)) if both_validated => {
                Some((cv * n_train + valid * n_valid) / (n_train + n_valid))
            }
            (_, valid) => valid,
        },
        both_validated,
    );
    if let Some(forced) = options.champion {
        selection.champion = forced;
        selection.forced = true;
    }
    let (pd_train, pd_valid) = match selection.champion {
        Champion::Logistic => (&logistic_train, &logistic_valid),
        Champion::BinnedScorecard => (&binned_train, &binned_valid),
        Champion::Forest => (&forest_train, &forest_valid),
    };
    let forest_name = format!("forest ({} trees)", options.trees);
    let candidates = [
        (Champion::Logistic, "logistic", &logistic_valid),
        (Champion::BinnedScorecard, "binned scorecard", &binned_valid),
        (Champion::Forest, forest_name.as_str(), &forest_valid),
    ];
    let (mut report, psi_edges, psi_reference) = validation_report(
        data,
        &split,
        &candidates,
        selection.champion,
        (pd_train, &y_train),
        (pd_valid, &y_valid),
    );
    report.alpha = Some(alpha);
    report.regularization = regularization;
    report.selection = Some(selection.text(options.trees));
    report.binned_alpha = binned_regularization.as_ref().map(|r| r.chosen);
    report.information_values = binned
        .features
        .iter()
        .map(|f| InformationValue {
            feature: f.name.clone(),
            iv: f.iv,
            bins: f.bins.len(),
        })
        .collect();

    let day = |d: Option<&i32>| d.map(|&d| dates::text(d));
    let validation_bads = y_valid.iter().filter(|&&b| b).count();
    let training = TrainingWindow {
        source: data.source.clone(),
        train_from: day(split.train_periods.first()),
        train_to: day(split.train_periods.last()),
        validation_from: day(split.validation_periods.first()),
        validation_to: day(split.validation_periods.last()),
        train_rows: split.train.len(),
        train_bads,
        validation_rows: split.validation.len(),
        validation_bads,
        fingerprint: fingerprint(&features, &raw, &data.bad, &split.train),
        refit: None,
    };
    let held_out = Shipped {
        features,
        scaler,
        coefficients,
        intercept,
        binned,
        forest: (selection.champion == Champion::Forest).then_some(forest),
        psi_edges,
        psi_reference,
        training,
    };
    let binned_alpha = binned_regularization.map(|r| r.chosen);
    let shipped = if options.refit {
        progress(6);
        refit(
            data,
            &split,
            (alpha, binned_alpha),
            selection.champion,
            options,
            held_out,
        )?
    } else {
        held_out
    };
    let design_columns = shipped
        .features
        .iter()
        .flat_map(Feature::design_names)
        .collect();
    Ok(RiskModel {
        format_version: FORMAT_VERSION,
        kind: data.kind,
        label: data.label.clone(),
        id_columns: data.id_columns.clone(),
        features: shipped.features,
        design_columns,
        scaler: shipped.scaler,
        coefficients: shipped.coefficients,
        intercept: shipped.intercept,
        scorecard: options.scorecard,
        training: shipped.training,
        psi_edges: shipped.psi_edges,
        psi_reference: shipped.psi_reference,
        report,
        champion: selection.champion,
        binned: Some(shipped.binned),
        forest: shipped.forest,
    })
}

/// The champion and why.
struct Selection {
    champion: Champion,
    aucs: [Option<f64>; 3],
    /// The AUCs pool the cross-validation with the validation rows.
    pooled: bool,
    /// The champion was given (`--champion`), not chosen by the rule.
    forced: bool,
}

impl Selection {
    /// The rule of [`train`] over the out-of-sample AUCs of the logistic regression, the
    /// scorecard and the forest: the scorecard when it is within [`SCORECARD_MARGIN`] of
    /// the best, else the best (a tie goes to the logistic regression, the simpler model).
    fn choose(
        logistic: Option<f64>,
        binned: Option<f64>,
        forest: Option<f64>,
        pooled: bool,
    ) -> Selection {
        let best = [logistic, binned, forest]
            .into_iter()
            .flatten()
            .fold(f64::MIN, f64::max);
        let champion = match (logistic, binned, forest) {
            (_, Some(b), _) if b >= best - SCORECARD_MARGIN => Champion::BinnedScorecard,
            (Some(l), _, _) if l >= best => Champion::Logistic,
            (_, _, Some(f)) if f >= best => Champion::Forest,
            (_, Some(_), _) => Champion::BinnedScorecard,
            _ => Champion::Logistic,
        };
        Selection {
            champion,
            aucs: [logistic, binned, forest],
            pooled,
            forced: false,
        }
    }

    /// The rule and the outcome, for the report.
    fn text(&self, trees: usize) -> String {
        let auc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
        let [l, b, f] = self.aucs;
        format!(
            "out-of-sample AUC ({}): logistic {}, binned scorecard {}, forest ({trees} trees) {}; \
             the rule: the scorecard when within 0.005 of the best, else the best; the champion \
             is {}{}",
            if self.pooled {
                "cross-validation pooled with the validation rows"
            } else {
                "validation rows"
            },
            auc(l),
            auc(b),
            auc(f),
            match self.champion {
                Champion::Logistic => "the logistic regression",
                Champion::BinnedScorecard => "the binned scorecard",
                Champion::Forest =>
                    "the forest (points from its PD, reasons from its path contributions)",
            },
            if self.forced {
                ", as given (--champion)"
            } else {
                ""
            }
        )
    }
}

/// The forest's mean AUC over the held-out folds of [`tuning::assign_folds`] (the folds
/// the other candidates' strengths are chosen on); folds with one class are left out.
fn forest_cv(
    z: ArrayView2<f64>,
    bad: &[bool],
    periods: Option<&[i32]>,
    options: &TrainOptions,
) -> Result<f64> {
    let (folds, k, _) = tuning::usable_folds(bad, periods);
    let mut aucs = Vec::with_capacity(k);
    for fold in &folds {
        let forest = Forest::fit(
            z.select(Axis(0), &fold.train).view(),
            &fold.train_bad,
            options.forest(),
        )?;
        let pd = forest.probabilities(z.select(Axis(0), &fold.test).view());
        if let Some(auc) = metrics::auc(&pd, &fold.test_bad) {
            aucs.push(auc);
        }
    }
    if aucs.is_empty() {
        return Err(ModelError::Training(format!(
            "cross-validation: no fold of the {} training rows holds both good and bad rows",
            bad.len()
        )));
    }
    Ok(aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// The parts of the artifact that a refit replaces.
struct Shipped {
    features: Vec<Feature>,
    scaler: Scaler,
    coefficients: Vec<f64>,
    intercept: f64,
    binned: BinnedScorecard,
    /// The forest, when it is the champion (it is not kept otherwise).
    forest: Option<Forest>,
    psi_edges: Vec<f64>,
    psi_reference: Vec<f64>,
    training: TrainingWindow,
}

/// The binned scorecard on `rows`: bins, WoE, the L2 strength (`alpha`, else by
/// cross-validation over `periods`), the regression, points.
fn fit_binned(
    data: &LabelledData,
    rows: &[usize],
    periods: Option<&[i32]>,
    alpha: Option<f64>,
    options: &TrainOptions,
) -> Result<(BinnedScorecard, Option<tuning::Regularization>)> {
    let features = bin_features(data, rows)?;
    let mut binned = BinnedScorecard {
        coefficients: vec![0.0; features.len()],
        features,
        intercept: 0.0,
        scaling: options.scorecard,
    };
    let x = binned
        .woe_matrix(data.features.columns())?
        .select(Axis(0), rows);
    let y: Vec<bool> = rows.iter().map(|&r| data.bad[r]).collect();
    let regularization = match alpha {
        Some(_) => None,
        // Bins and WoE learnt again on each fold's training rows.
        None => Some(tuning::choose_alpha_with(
            &y,
            periods,
            options.max_iterations,
            options.gradient_tolerance,
            &mut |train, test| {
                let global = |local: &[usize]| local.iter().map(|&i| rows[i]).collect::<Vec<_>>();
                let (train, test) = (global(train), global(test));
                let card = BinnedScorecard {
                    features: bin_features(data, &train)?,
                    coefficients: Vec::new(),
                    intercept: 0.0,
                    scaling: options.scorecard,
                };
                let all = card.woe_matrix(data.features.columns())?;
                Ok((all.select(Axis(0), &train), all.select(Axis(0), &test)))
            },
        )?),
    };
    let alpha = alpha
        .or(regularization.as_ref().map(|r| r.chosen))
        .expect("given or chosen");
    // Evidence of good must lower the risk: a feature whose coefficient comes out the
    // wrong way round (above zero: a safer bin would score fewer points — collinear
    // features do this) is set aside (its WoE column zeroed, so its coefficient is 0 and
    // every bin of it gets the shared points only) and the others are fitted again.
    let mut x = x;
    let (mut coefficients, mut intercept) = fit_logistic(x.view(), &y, alpha, options)?;
    while coefficients.iter().any(|&c| c > 0.0) {
        for (j, c) in coefficients.iter().enumerate() {
            if *c > 0.0 {
                x.column_mut(j).fill(0.0);
            }
        }
        (coefficients, intercept) = fit_logistic(x.view(), &y, alpha, options)?;
    }
    binned.coefficients = coefficients;
    binned.intercept = intercept;
    binned.set_points(&options.scorecard);
    Ok((binned, regularization))
}

/// Every column binned on `rows`.
fn bin_features(data: &LabelledData, rows: &[usize]) -> Result<Vec<BinnedFeature>> {
    let schema = data.features.schema();
    schema
        .fields()
        .iter()
        .zip(data.features.columns())
        .map(|(field, column)| {
            BinnedFeature::fit(field.name(), column, &data.bad, rows, MIN_BIN_SHARE)
        })
        .collect()
}

/// The model fitted again on every labelled row with the chosen strengths (`alphas`: the
/// logistic regression's, the scorecard's): encoding, scaler, coefficients, bins; the PSI
/// reference from the champion's PDs on those rows; the training window keeps the
/// held-out fit's split (the report's figures are that fit's) and records the refit.
fn refit(
    data: &LabelledData,
    split: &Split,
    alphas: (f64, Option<f64>),
    champion: Champion,
    options: &TrainOptions,
    held_out: Shipped,
) -> Result<Shipped> {
    let all: Vec<usize> = (0..data.bad.len()).collect();
    let features = fit_features(data, &all)?;
    let raw = design_matrix(&features, data.features.columns())?;
    let scaler = Scaler::fit(&raw);
    let mut z = raw.clone();
    scaler.transform(&mut z);
    let (coefficients, intercept) = fit_logistic(z.view(), &data.bad, alphas.0, options)?;
    let binned_alpha = alphas.1.unwrap_or(alphas.0);
    let (binned, _) = fit_binned(data, &all, None, Some(binned_alpha), options)?;
    let forest = match champion {
        Champion::Forest => Some(Forest::fit(z.view(), &data.bad, options.forest())?),
        _ => None,
    };
    let pd = match (champion, &forest) {
        (Champion::BinnedScorecard, _) => binned
            .log_odds(data.features.columns())?
            .into_iter()
            .map(logistic)
            .collect(),
        (Champion::Forest, Some(forest)) => forest.probabilities(z.view()),
        _ => probabilities(&z, &coefficients, intercept),
    };
    let psi_edges = metrics::psi_edges(&pd);
    let psi_reference = metrics::bin_shares(&pd, &psi_edges);
    let day = |d: Option<&i32>| d.map(|&d| dates::text(d));
    let periods = || split.train_periods.iter().chain(&split.validation_periods);
    let training = TrainingWindow {
        fingerprint: fingerprint(&features, &raw, &data.bad, &all),
        refit: Some(Refit {
            rows: all.len(),
            bads: data.bad.iter().filter(|&&b| b).count(),
            from: day(periods().min()),
            to: day(periods().max()),
        }),
        ..held_out.training
    };
    Ok(Shipped {
        features,
        scaler,
        coefficients,
        intercept,
        binned,
        forest,
        psi_edges,
        psi_reference,
        training,
    })
}

/// PDs of standardized rows.
fn probabilities(z: &Array2<f64>, coefficients: &[f64], intercept: f64) -> Vec<f64> {
    fitter::log_odds(z.view(), coefficients, intercept)
        .into_iter()
        .map(logistic)
        .collect()
}

/// Checks the rows, splits them into training and validation rows; also the number of
/// bad training rows (both classes must be there).
fn split_rows(data: &LabelledData, options: &TrainOptions) -> Result<(Split, usize)> {
    let n = data.bad.len();
    if n != data.features.num_rows() {
        return Err(ModelError::Training(format!(
            "{} labels for {} rows",
            n,
            data.features.num_rows()
        )));
    }
    let split = Split::new(data, options.validation_share)?;
    let train_bads = split.train.iter().filter(|&&r| data.bad[r]).count();
    if train_bads == 0 || train_bads == split.train.len() {
        return Err(ModelError::Training(format!(
            "the {} training rows are all {}: a model needs both good and bad examples",
            split.train.len(),
            if train_bads == 0 { "good" } else { "bad" }
        )));
    }
    Ok((split, train_bads))
}

/// The encoding of every column, fitted on `rows`, with its reason texts.
fn fit_features(data: &LabelledData, rows: &[usize]) -> Result<Vec<Feature>> {
    let schema = data.features.schema();
    let mut features = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(data.features.columns()) {
        let mut feature = Feature::fit(field.name(), column, rows)?;
        if let Some((high, low)) = (data.reason_texts)(field.name()) {
            feature.reason_high = Some(high.to_string());
            feature.reason_low = Some(low.to_string());
        }
        features.push(feature);
    }
    if features.is_empty() {
        return Err(ModelError::Training("no feature columns".into()));
    }
    Ok(features)
}

/// The report (candidates and baseline on the validation rows, calibration,
/// PSI) and the PSI reference bins of the champion's training PDs. `candidates` are the
/// shippable candidates with their validation PDs; `train` holds the champion's training
/// PDs and labels, `valid` its validation PDs and labels.
fn validation_report(
    data: &LabelledData,
    split: &Split,
    candidates: &[(Champion, &str, &Vec<f64>)],
    champion: Champion,
    train: (&[f64], &[bool]),
    valid: (&[f64], &[bool]),
) -> (Report, Vec<f64>, Vec<f64>) {
    let ((pd_train, y_train), (pd_valid, y_valid)) = (train, valid);
    let champion_name = candidates
        .iter()
        .find(|c| c.0 == champion)
        .map_or("logistic", |c| c.1);
    // The champion first, then the other candidates, the baseline.
    let mut validation = vec![RankingMetrics::of(
        &format!("champion: {champion_name}"),
        pd_valid,
        y_valid,
        true,
    )];
    for (kind, name, pd) in candidates {
        if *kind != champion {
            validation.push(RankingMetrics::of(
                &format!("candidate: {name}"),
                pd,
                y_valid,
                true,
            ));
        }
    }
    if let Some((name, values)) = &data.baseline {
        let baseline: Vec<f64> = split.validation.iter().map(|&r| values[r]).collect();
        validation.push(RankingMetrics::of(
            &format!("baseline: {name}"),
            &baseline,
            y_valid,
            false,
        ));
    }
    let psi_edges = metrics::psi_edges(pd_train);
    let psi_reference = metrics::bin_shares(pd_train, &psi_edges);
    let psi_train_validation =
        metrics::psi(&psi_reference, &metrics::bin_shares(pd_valid, &psi_edges));
    let report = Report {
        champion_train: RankingMetrics::of(
            &format!("champion: {champion_name}"),
            pd_train,
            y_train,
            true,
        ),
        validation,
        calibration: metrics::calibration(pd_valid, y_valid),
        psi_train_validation,
        alpha: None,
        regularization: None,
        selection: None,
        binned_alpha: None,
        information_values: Vec::new(),
    };
    (report, psi_edges, psi_reference)
}

/// Fits the champion on standardized rows: coefficients and intercept of the log-odds of
/// going bad ([`crate::logistic`]).
pub fn fit_logistic(
    z: ArrayView2<f64>,
    bad: &[bool],
    alpha: f64,
    options: &TrainOptions,
) -> Result<(Vec<f64>, f64)> {
    let fitted = fitter::fit(
        z,
        bad,
        fitter::Settings {
            alpha,
            max_iterations: options.max_iterations,
            gradient_tolerance: options.gradient_tolerance,
        },
        None,
    )?;
    Ok((fitted.coefficients, fitted.intercept))
}

/// Training and validation rows.
struct Split {
    train: Vec<usize>,
    validation: Vec<usize>,
    train_periods: Vec<i32>,
    validation_periods: Vec<i32>,
}

impl Split {
    fn new(data: &LabelledData, validation_share: f64) -> Result<Split> {
        let n = data.bad.len();
        match &data.periods {
            Some(periods) => {
                let mut distinct: Vec<i32> = periods.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() < 2 {
                    return Err(ModelError::Training(format!(
                        "an out-of-time validation needs labelled rows from at least two snapshots, \
                         found {}",
                        distinct.len()
                    )));
                }
                let held = ((distinct.len() as f64 * validation_share).round() as usize)
                    .clamp(1, distinct.len() - 1);
                let first_validation = distinct[distinct.len() - held];
                let (validation, train): (Vec<usize>, Vec<usize>) =
                    (0..n).partition(|&r| periods[r] >= first_validation);
                let (train_periods, validation_periods) = distinct.split_at(distinct.len() - held);
                Ok(Split {
                    train,
                    validation,
                    train_periods: train_periods.to_vec(),
                    validation_periods: validation_periods.to_vec(),
                })
            }
            None => {
                if n < 10 {
                    return Err(ModelError::Training(format!(
                        "{n} labelled rows are too few to train and validate"
                    )));
                }
                // A fixed pseudo-random share of the rows (SplitMix64 of the row number),
                // so that no pattern in the row order lines up with the split.
                let (validation, train) = (0..n).partition(|&r| {
                    let mut z = (r as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    ((z >> 11) as f64 / (1u64 << 53) as f64) < validation_share
                });
                Ok(Split {
                    train,
                    validation,
                    train_periods: Vec::new(),
                    validation_periods: Vec::new(),
                })
            }
        }
    }
}

/// FNV-1a over feature names, then each training row's label and raw values.
fn fingerprint(features: &[Feature], raw: &Array2<f64>, bad: &[bool], train: &[usize]) -> String {
    let mut f = Fingerprint::default();
    for feature in features {
        f.update(feature.name.as_bytes());
        f.update(&[0]);
    }
    for &r in train {
        f.update(&[bad[r] as u8]);
        for v in raw.row(r) {
            f.update(&v.to_le_bytes());
        }
    }
    f.hex()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Float64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    /// One feature, bad when it is high; `bad_share` of the rows are bad.
    fn separable(n: usize, bad_share: f64) -> (RecordBatch, Vec<bool>) {
        let mut x = Vec::with_capacity(n);
        let mut bad = Vec::with_capacity(n);
        for i in 0..n {
            let is_bad = (i as f64) < n as f64 * bad_share;
            // Overlapping but clearly shifted: bads around 2, goods around 0.
            let noise = ((i * 7919) % 100) as f64 / 50.0 - 1.0;
            x.push(if is_bad { 2.0 + noise } else { noise });
            bad.push(is_bad);
        }
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let column: ArrayRef = Arc::new(Float64Array::from(x));
        (RecordBatch::try_new(schema, vec![column]).unwrap(), bad)
    }

    /// The PD is of going bad whether bads are the rarer class or the more frequent one
    /// (linfa's logistic regression, used before, modelled the more frequent class).
    #[test]
    fn the_pd_is_of_going_bad_whichever_class_is_frequent() {
        for bad_share in [0.2, 0.8] {
            let (batch, bad) = separable(500, bad_share);
            let model = train(&table_data(batch, bad), &fast(), &mut |_| {}).unwrap();
            let high: ArrayRef = Arc::new(Float64Array::from(vec![3.0, -1.0]));
            let pd = model.probabilities(&[high]).unwrap();
            assert!(pd[0] > 0.9 && pd[1] < 0.1, "{bad_share}: {pd:?}");
        }
    }

    /// Few trees: the forest is not what these tests look at.
    fn fast() -> TrainOptions {
        TrainOptions {
            trees: 5,
            ..TrainOptions::default()
        }
    }

    /// Rows of a plain table: no periods, no baseline, no reason texts.
    fn table_data(features: RecordBatch, bad: Vec<bool>) -> LabelledData {
        LabelledData {
            source: "test".into(),
            kind: ModelKind::Table,
            label: "bad".into(),
            id_columns: vec![],
            features,
            bad,
            periods: None,
            baseline: None,
            reason_texts: |_| None,
        }
    }

    #[test]
    fn training_ranks_bads_first_and_validates_out_of_time() {
        let (batch, bad) = separable(600, 0.25);
        // Periods 0..6 cycling: the last two (4, 5) validate.
        let periods: Vec<i32> = (0..600).map(|i| i % 6).collect();
        let data = LabelledData {
            baseline: Some(("x".into(), (0..600).map(|i| (i % 3) as f64).collect())),
            periods: Some(periods),
            ..table_data(batch, bad)
        };
        let mut stages = Vec::new();
        let options = TrainOptions {
            trees: 5,
            ..TrainOptions::default()
        };
        let model = train(&data, &options, &mut |s| stages.push(s)).unwrap();
        assert_eq!(stages, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(model.training.train_rows, 400);
        assert_eq!(model.training.validation_rows, 200);
        assert_eq!(
            model.training.validation_from.as_deref(),
            Some("1970-01-05")
        );
        assert!(model.coefficients[0] > 0.0);
        let champion = &model.report.validation[0];
        assert!(champion.auc.unwrap() > 0.9, "{champion:?}");
        // Champion, the other candidates, then the uninformative baseline, near 0.5.
        let names: Vec<&str> = model
            .report
            .validation
            .iter()
            .map(|m| m.model.as_str())
            .collect();
        assert!(names[0].starts_with("champion: "));
        assert!(names[1..3].iter().all(|n| n.starts_with("candidate: ")));
        assert!(names[..3].iter().any(|n| n.ends_with("forest (5 trees)")));
        assert_eq!(names[3], "baseline: x");
        assert!((model.report.validation[3].auc.unwrap() - 0.5).abs() < 0.1);
        assert!(
            model
                .report
                .selection
                .as_ref()
                .unwrap()
                .contains("the champion is")
        );
        // Same data, same model, byte for byte.
        let again = train(&data, &options, &mut |_| {}).unwrap();
        assert_eq!(model.to_json().unwrap(), again.to_json().unwrap());
        // A round trip through JSON keeps every field.
        let read = RiskModel::from_json(&model.to_json().unwrap(), "m.json").unwrap();
        assert_eq!(read, model);

        // The L2 strength came from folds by snapshot (4 training periods: 4 folds).
        let regularization = model.report.regularization.as_ref().unwrap();
        assert_eq!(
            (regularization.folds, regularization.folds_by.as_str()),
            (4, "snapshots")
        );
        assert_eq!(model.report.alpha, Some(regularization.chosen));

        // The shipped model was refitted on all 600 rows: its fingerprint covers them all.
        let refit = model.training.refit.as_ref().unwrap();
        assert_eq!((refit.rows, refit.bads), (600, 150));
        assert_eq!(
            (refit.from.as_deref(), refit.to.as_deref()),
            (Some("1970-01-01"), Some("1970-01-06"))
        );
        let all: Vec<usize> = (0..600).collect();
        let raw = design_matrix(&model.features, data.features.columns()).unwrap();
        assert_eq!(
            model.training.fingerprint,
            fingerprint(&model.features, &raw, &data.bad, &all)
        );
        // Without the refit: the training rows' fit, fingerprint and PSI reference.
        let held = train(
            &data,
            &TrainOptions {
                refit: false,
                ..options.clone()
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(held.training.refit.is_none());
        let train_rows: Vec<usize> = (0..600).filter(|r| r % 6 < 4).collect();
        assert_eq!(
            held.training.fingerprint,
            fingerprint(&held.features, &raw, &data.bad, &train_rows)
        );
        assert_ne!(held.coefficients, model.coefficients);
        // The report (held-out figures) is the same either way.
        assert_eq!(held.report, model.report);
    }

    /// The scorecard's points: a row's score is the sum of its bins' points, and it
    /// agrees with the scaling of the scorecard's PD up to the rounding of each bin.
    #[test]
    fn scorecard_points_add_up_to_the_score() {
        let (batch, bad) = separable(2000, 0.2);
        let model = train(&table_data(batch.clone(), bad), &fast(), &mut |_| {}).unwrap();
        let binned = model.binned.as_ref().unwrap();
        let columns = batch.columns();
        let points = binned.points(columns).unwrap();
        let log_odds = binned.log_odds(columns).unwrap();
        let assigned = binned.features[0].assign(&columns[0]).unwrap();
        for (r, (&p, &eta)) in points.iter().zip(&log_odds).enumerate() {
            let bin = &binned.features[0].bins[assigned[r].unwrap()];
            assert_eq!(p, bin.points);
            let exact = model.scorecard.points_for(logistic(eta));
            assert!((p as f64 - exact).abs() <= 1.0, "{p} vs {exact}");
        }
        // Riskier bins (lower WoE) give fewer points.
        let bins = &binned.features[0].bins;
        for pair in bins.windows(2) {
            assert_eq!(pair[0].woe > pair[1].woe, pair[0].points >= pair[1].points);
        }
        // With the scorecard as champion, `score` gives exactly those points.
        let card = RiskModel {
            champion: Champion::BinnedScorecard,
            ..model.clone()
        };
        assert_eq!(card.score(columns, 3).unwrap().points, points);
        let pd = card.probabilities(columns).unwrap();
        assert!(
            pd.iter()
                .zip(&log_odds)
                .all(|(p, e)| (p - logistic(*e)).abs() < 1e-15)
        );
        // Two near-copies of one feature (collinear): no coefficient on WoE comes out
        // above zero, so a safer bin never scores fewer points.
        let x = columns[0].as_any().downcast_ref::<Float64Array>().unwrap();
        let copy: ArrayRef = Arc::new(Float64Array::from_iter_values(
            x.values()
                .iter()
                .enumerate()
                .map(|(i, v)| v + (i % 7) as f64 * 0.01),
        ));
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("x_again", DataType::Float64, false),
        ]));
        let both = RecordBatch::try_new(schema, vec![columns[0].clone(), copy]).unwrap();
        let (_, bad) = separable(2000, 0.2);
        let twice = train(&table_data(both, bad), &fast(), &mut |_| {}).unwrap();
        let coefficients = &twice.binned.as_ref().unwrap().coefficients;
        assert!(coefficients.iter().all(|&c| c <= 0.0), "{coefficients:?}");
        // And the artifact keeps it through JSON.
        let read = RiskModel::from_json(&card.to_json().unwrap(), "m.json").unwrap();
        assert_eq!(read, card);
    }

    #[test]
    fn the_scorecard_wins_within_the_margin_else_the_best() {
        let choose = |l, b, f| Selection::choose(Some(l), Some(b), Some(f), true).champion;
        assert_eq!(choose(0.80, 0.796, 0.79), Champion::BinnedScorecard);
        assert_eq!(choose(0.79, 0.796, 0.80), Champion::BinnedScorecard);
        assert_eq!(choose(0.81, 0.80, 0.79), Champion::Logistic);
        assert_eq!(choose(0.79, 0.78, 0.81), Champion::Forest);
        // A tie goes to the simpler model.
        assert_eq!(choose(0.81, 0.70, 0.81), Champion::Logistic);
        // Without a forest AUC (one class in the validation rows): never the forest.
        let none = Selection::choose(Some(0.7), Some(0.6), None, false);
        assert_eq!(none.champion, Champion::Logistic);
    }

    /// Bad when exactly one of two features is high (an interaction neither the
    /// logistic regression nor the additive scorecard can express): the forest wins, is
    /// shipped and refitted, scores through the artifact, and its reasons are the
    /// features whose splits raised the PD.
    #[test]
    fn a_forest_that_ranks_best_is_the_champion_and_explains_itself() {
        let n = 3000;
        let mut rng = 0x1234_5678_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut a, mut b, mut noise, mut bad) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let (x, y, z, u) = (next(), next(), next(), next());
            a.push(x);
            b.push(y);
            noise.push(z);
            bad.push(u < if (x > 0.5) != (y > 0.5) { 0.6 } else { 0.05 });
        }
        let schema = Arc::new(Schema::new(
            ["a", "b", "noise"]
                .map(|c| Field::new(c, DataType::Float64, false))
                .to_vec(),
        ));
        let columns: Vec<ArrayRef> = [a, b, noise]
            .into_iter()
            .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema, columns.clone()).unwrap();
        let options = TrainOptions {
            trees: 20,
            tree_depth: 4,
            ..TrainOptions::default()
        };
        let model = train(&table_data(batch, bad.clone()), &options, &mut |_| {}).unwrap();
        assert_eq!(
            model.champion,
            Champion::Forest,
            "{:?}",
            model.report.selection
        );
        assert!(
            model.report.validation[0]
                .model
                .ends_with("forest (20 trees)")
        );
        let forest = model.forest.as_ref().expect("the forest is shipped");
        // Refitted on every row: the root of each tree saw all of them.
        assert!(forest.trees.iter().all(|t| t.nodes[0].rows == n));
        let scored = model.score(&columns, 2).unwrap();
        let auc = metrics::auc(&scored.pd, &bad).unwrap();
        assert!(auc > 0.8, "{auc}");
        // Points are the scaling of the forest's PD.
        for (p, pts) in scored.pd.iter().zip(&scored.points) {
            assert_eq!(*pts, model.scorecard.points_i32(*p).unwrap());
        }
        // Reasons: a risky row (a high, b low) names a and b first, the noise column
        // (if at all) after them.
        let one = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let row = [one(0.9), one(0.1), one(0.5)];
        let risky = model.score(&row, 3).unwrap();
        assert!(risky.pd[0] > 0.4, "{:?}", risky.pd);
        assert!(
            risky.reasons[0][0].starts_with("a is high")
                || risky.reasons[0][0].starts_with("b is low")
        );
        let named = model.reason_features(&row, 3).unwrap();
        let mut first_two = named[0][..2].to_vec();
        first_two.sort_unstable();
        assert_eq!(first_two, [0, 1], "{:?}", risky.reasons);
        // The contributions add up to the PD from the forest's bias.
        let contributions = model.contribution_matrix(&columns).unwrap();
        for (row, pd) in contributions.iter().zip(&scored.pd) {
            assert!((forest.bias() + row.iter().sum::<f64>() - pd).abs() < 1e-9);
        }
        // Through JSON, the same scores; a forest champion without its forest is refused.
        let json = model.to_json().unwrap();
        let read = RiskModel::from_json(&json, "m.json").unwrap();
        assert_eq!(read.score(&columns, 2).unwrap(), scored);
        let lacking = RiskModel {
            forest: None,
            ..model.clone()
        };
        let err = RiskModel::from_json(&lacking.to_json().unwrap(), "m.json").unwrap_err();
        assert!(err.to_string().contains("lacks"), "{err}");
    }

    #[test]
    fn one_class_or_one_period_is_refused() {
        let (batch, _) = separable(100, 0.2);
        let data = table_data(batch, vec![false; 100]);
        let err = train(&data, &TrainOptions::default(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("all good"), "{err}");
        let data = LabelledData {
            periods: Some(vec![7; 100]),
            ..data
        };
        let err = train(&data, &TrainOptions::default(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("at least two snapshots"), "{err}");
    }
}
