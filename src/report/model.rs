//! The model section: how the risk model holds up.
//!
//! - The validation report stored in the model artifact (champion, the other candidates
//!   and the max-DPD baseline, out of time at training): AUC, Gini, KS, Brier, capture of bads in
//!   the riskiest 10 % / 20 %, and the champion's calibration by decile.
//! - On this warehouse, over the labelled snapshots of the report's months (the 90 days
//!   after them are known; customers not yet 90+ days past due, the model's population):
//!   ROC curves of the champion (its PD) and the baseline (`max_dpd`), AUC, KS and
//!   capture, and the score distributions of goods and bads. The other candidates are
//!   not the model that scores, so they have no curve here: their stored figures are in
//!   the table.
//! - Today's scored population against training: the PSI over the training deciles with
//!   the 0.1 / 0.25 bands, and the most frequent reason codes.
//! - The backtest (`arq backtest`) on the last [`BACKTEST_SNAPSHOTS`] snapshots of the
//!   report's months whose 90-day outcome is known: the newly-bad balance in the first
//!   20 % of arq's queue against oldest-first and largest-first, per currency.
//!
//! Each snapshot is scored once, with the same sliced feature queries as `arq score` (the
//! same PDs as `risk_score` in SQL). With the nightly's history (`--nights`, and the
//! nightly's own report) the scores are those the nights computed with this model (read
//! from their `scores.parquet`, [`Nights::scores`]): nothing is scored again, and a
//! labelled snapshot no night scored is left out (the section says how many). The
//! 90-day outcomes come from the newest night's `outcomes.parquet` (the outcomes its
//! report read), so only a snapshot no night labelled is labelled here. Without the
//! history, every labelled snapshot of the months is scored here, which at a million
//! customers takes minutes.

use std::collections::{BTreeMap, HashMap};

use arq_models::backtest::{BacktestRow, ORDERINGS, backtest_scores, outcomes};
use arq_models::metrics;
use arq_models::policy::QueuePolicy;
use arq_models::scores::{Scores, score_snapshot};
use arq_models::sql::SessionModel;
use arq_udfs::dates;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::Period;
use super::charts::{self, Axes, Series};
use super::format;
use super::nights::{Nights, Outcomes};
use super::view::{Chart, Table};
use crate::error::Result;

#[derive(Debug, Serialize)]
pub struct ModelView {
    pub trained: String,
    pub stored: Table,
    pub window: String,
    pub rows: String,
    pub evaluated: Table,
    pub charts: Vec<Chart>,
    pub psi: String,
    pub psi_verdict: String,
    /// The backtest's rows (the nightly keeps them: `backtest.parquet`).
    #[serde(skip)]
    pub backtest: Vec<BacktestRow>,
    /// The labelled snapshots' outcomes the section read (the nightly keeps them:
    /// `outcomes.parquet`).
    #[serde(skip)]
    pub outcomes: Outcomes,
}

/// Why a chart is empty when the nights given scored none of the labelled snapshots.
const NO_NIGHT: &str = "no night in the output folder scored a labelled snapshot of these \
     months with this model (run `arq nightly --as-of DATE` once for past snapshots, or \
     `arq report` without --nights to score them here)";

/// Snapshots the backtest replays: the last six of the report's months whose 90 days after
/// are in the warehouse.
pub const BACKTEST_SNAPSHOTS: usize = 6;

/// What the model section reads besides the session.
pub struct ModelInput<'a> {
    pub model: &'a SessionModel,
    /// The queue rules the backtest replays.
    pub queues: &'a QueuePolicy,
    /// The warehouse's complete snapshot days (days since 1970).
    pub snapshot_days: Vec<i32>,
    /// Customers per feature query when a snapshot is scored here.
    pub slice: usize,
    /// The policy's fingerprint: a night's backtest rows count when it used this policy.
    pub policy_fingerprint: &'a str,
}

/// The scores of snapshot `day`: as a night computed them with this model (read from its
/// outputs, or tonight's), else computed here as `arq score` does.
pub async fn scores(
    ctx: &SessionContext,
    input: &ModelInput<'_>,
    nights: &Nights,
    day: i32,
) -> Result<Scores> {
    match nights.scores(day) {
        Some(stored) => Ok(stored),
        None => score_here(ctx, input, day).await,
    }
}

/// Scores snapshot `day` as `arq score` does.
async fn score_here(ctx: &SessionContext, input: &ModelInput<'_>, day: i32) -> Result<Scores> {
    let model = input.model;
    Ok(score_snapshot(&ctx.state(), &model.model, &model.name, day, input.slice).await?)
}

/// Builds the section; `today` are the snapshot's scores.
pub async fn build(
    ctx: &SessionContext,
    period: &Period,
    input: &ModelInput<'_>,
    today: &Scores,
    nights: &Nights,
) -> Result<ModelView> {
    let model = input.model;
    let risk = &model.model;
    let report = &risk.report;
    let pct = |v: Option<f64>| v.map(format::percent).unwrap_or_else(|| "–".into());
    let num = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
    let mut stored = Table::new(&[
        "model",
        "AUC!",
        "Gini!",
        "KS!",
        "Brier!",
        "bads in riskiest 10 %!",
        "bads in riskiest 20 %!",
    ]);
    for (name, m) in report.rankings() {
        stored.push(vec![
            name,
            num(m.auc),
            num(m.gini),
            num(m.ks),
            num(m.brier),
            pct(m.capture_top_10),
            pct(m.capture_top_20),
        ]);
    }

    let (labelled, replayed) = replay(ctx, period, input, nights).await?;
    let mut charts = vec![calibration(report)?];
    let mut evaluated = Table::new(&[
        "ranking",
        "AUC!",
        "KS!",
        "bads in riskiest 10 %!",
        "bads in riskiest 20 %!",
    ]);
    let bads = labelled.bad.iter().filter(|b| **b).count();
    if labelled.bad.is_empty() || bads == 0 || bads == labelled.bad.len() {
        let why = match labelled.without_night {
            0 => {
                "no labelled snapshot with both goods and bads in these months (labels need \
                  the 90 days after a snapshot)"
            }
            _ => NO_NIGHT,
        };
        charts.push(Chart::missing(
            "roc".into(),
            "ROC curves on this warehouse".into(),
            why,
        ));
    } else {
        // Each ranking sorted once for all its figures (millions of customer-snapshots).
        let champion = metrics::Ranking::new(&labelled.pd, &labelled.bad);
        let baseline = metrics::Ranking::new(&labelled.max_dpd, &labelled.bad);
        for (name, ranking) in [
            ("champion (PD)", &champion),
            ("baseline (max DPD)", &baseline),
        ] {
            evaluated.push(vec![
                name.to_string(),
                num(ranking.auc()),
                num(ranking.ks()),
                pct(ranking.capture(0.10)),
                pct(ranking.capture(0.20)),
            ]);
        }
        charts.push(roc(&labelled, &champion, &baseline)?);
        charts.push(distribution(&labelled)?);
    }

    let pds = today.pd_below_late_stage();
    let psi = risk.psi(&pds);
    charts.push(psi_chart(risk, &pds, psi)?);
    charts.push(reasons(today)?);
    charts.extend(backtest(&replayed, labelled.without_night)?);
    Ok(ModelView {
        trained: format!(
            "trained on {} rows ({} bads) from {} to {}, validated out of time on {} rows ({} \
             bads) from {} to {}",
            format::count(risk.training.train_rows as i64),
            format::count(risk.training.train_bads as i64),
            risk.training.train_from.as_deref().unwrap_or("–"),
            risk.training.train_to.as_deref().unwrap_or("–"),
            format::count(risk.training.validation_rows as i64),
            format::count(risk.training.validation_bads as i64),
            risk.training.validation_from.as_deref().unwrap_or("–"),
            risk.training.validation_to.as_deref().unwrap_or("–"),
        ),
        stored,
        window: format!("{} to {}", period.from, period.to),
        rows: format!(
            "{} customer-snapshots, {} bads{}",
            format::count(labelled.bad.len() as i64),
            format::count(bads as i64),
            match labelled.without_night {
                0 => String::new(),
                n => format!(
                    "; {n} labelled snapshot{} left out: no night scored {} with this model",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "it" } else { "them" }
                ),
            }
        ),
        evaluated,
        charts,
        psi: format!("{psi:.3}"),
        psi_verdict: metrics::psi_verdict(psi).to_string(),
        backtest: replayed,
        outcomes: labelled.outcomes,
    })
}

/// Scored and labelled rows of the window.
struct Labelled {
    pd: Vec<f64>,
    max_dpd: Vec<f64>,
    bad: Vec<bool>,
    /// Labelled snapshots left out because the nights given had not scored them.
    without_night: usize,
    /// The outcomes read, per labelled snapshot.
    outcomes: Outcomes,
}

/// The labelled snapshots of the report's months, each scored once (as its night did, or
/// here): the champion's and the baseline's rankings against the 90-day outcome, and the
/// queue replayed on the last [`BACKTEST_SNAPSHOTS`] of them whose outcome is known by the
/// report's snapshot.
async fn replay(
    ctx: &SessionContext,
    period: &Period,
    input: &ModelInput<'_>,
    nights: &Nights,
) -> Result<(Labelled, Vec<BacktestRow>)> {
    let (from, last) = (period.from_day()?, period.as_of_day()?);
    let newest = input
        .snapshot_days
        .iter()
        .copied()
        .max()
        .unwrap_or(i32::MIN);
    // A label is known once the warehouse holds the 90 days after the snapshot; the
    // backtest (as `arq backtest` over these months) stops at the report's snapshot.
    let window: Vec<i32> = input
        .snapshot_days
        .iter()
        .copied()
        .filter(|&d| d >= from && d <= last && d.saturating_add(90) <= newest)
        .collect();
    let known: Vec<i32> = window
        .iter()
        .copied()
        .filter(|&d| d.saturating_add(90) <= last)
        .collect();
    let replayed_days = &known[known.len().saturating_sub(BACKTEST_SNAPSHOTS)..];
    // A night keeps the rows it replayed and the outcomes it read: replay and label only
    // what no night has.
    let kept = nights.backtest(input.policy_fingerprint);
    let mut kept_outcomes = nights.outcomes();
    let state = ctx.state();
    let mut labelled = Labelled {
        pd: Vec::new(),
        max_dpd: Vec::new(),
        bad: Vec::new(),
        without_night: 0,
        outcomes: Outcomes::new(),
    };
    let mut rows = Vec::new();
    for day in window {
        // With the nightly's history, the scores the nights computed (what was acted on);
        // without it, every labelled snapshot is scored here.
        let stored = nights.scores(day);
        if stored.is_none() && nights.given() {
            labelled.without_night += 1;
            continue;
        }
        let outcomes = match kept_outcomes.remove(&day) {
            Some(kept) => kept,
            None => {
                let started = std::time::Instant::now();
                let Some(computed) = outcomes(&state, day).await? else {
                    continue;
                };
                super::rows::timing("labels of a snapshot", started);
                outcomes_of_pairs(&computed)?
            }
        };
        let (ids, went_bad) = (
            outcomes.column(0).as_string::<i32>(),
            outcomes.column(1).as_boolean(),
        );
        let bad: HashMap<&str, bool> = (0..outcomes.num_rows())
            .map(|r| (ids.value(r), went_bad.value(r)))
            .collect();
        let scores = match stored {
            Some(scores) => scores,
            None => score_here(ctx, input, day).await?,
        };
        for r in 0..scores.len() {
            let dpd = scores.max_dpd.value(r);
            if dpd >= arq_models::features::LATE_STAGE_DPD as i32 {
                continue;
            }
            if let Some(&went_bad) = bad.get(scores.customer_id.value(r)) {
                labelled.pd.push(scores.pd.value(r));
                labelled.max_dpd.push(dpd as f64);
                labelled.bad.push(went_bad);
            }
        }
        if replayed_days.contains(&day) {
            let stored: Vec<&BacktestRow> = kept.iter().filter(|r| r.day == day).collect();
            if stored.is_empty() {
                let model = &input.model.model;
                let started = std::time::Instant::now();
                let replay = backtest_scores(&state, model, input.queues, &scores, &bad).await?;
                super::rows::timing("a queue replayed", started);
                rows.extend(replay.into_iter().flatten());
            } else {
                rows.extend(stored.into_iter().cloned());
            }
        }
        drop(bad);
        labelled.outcomes.insert(day, outcomes);
    }
    Ok((labelled, rows))
}

/// Computed outcomes as a batch of `customer_id` and `went_bad` ([`Outcomes`]).
fn outcomes_of_pairs(pairs: &[(String, bool)]) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("went_bad", DataType::Boolean, false),
    ]));
    let ids: ArrayRef = std::sync::Arc::new(StringArray::from_iter_values(
        pairs.iter().map(|(c, _)| c.as_str()),
    ));
    let bad: ArrayRef = std::sync::Arc::new(BooleanArray::from(
        pairs.iter().map(|(_, b)| *b).collect::<Vec<bool>>(),
    ));
    Ok(RecordBatch::try_new(schema, vec![ids, bad])?)
}

/// The ROC curve of `scores` (higher = riskier) walked in `order` (riskiest first), at
/// most ~100 points.
fn roc_points(scores: &[f64], bad: &[bool], order: &[usize]) -> Vec<(f64, f64)> {
    let positives = bad.iter().filter(|b| **b).count().max(1) as f64;
    let negatives = bad.iter().filter(|b| !**b).count().max(1) as f64;
    let step = (scores.len() / 100).max(1);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < order.len() {
        // Ties move together.
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]] == score {
            if bad[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        if i % step == 0 || i == order.len() {
            points.push((fp / negatives, tp / positives));
        }
    }
    points.dedup();
    points
}

fn roc(
    labelled: &Labelled,
    champion: &metrics::Ranking,
    baseline: &metrics::Ranking,
) -> Result<Chart> {
    let title = "ROC curves on this warehouse (labelled snapshots)".to_string();
    let (auc_c, auc_b) = (champion.auc().unwrap_or(0.5), baseline.auc().unwrap_or(0.5));
    let champion = roc_points(&labelled.pd, &labelled.bad, champion.order());
    let baseline = roc_points(&labelled.max_dpd, &labelled.bad, baseline.order());
    let reading = format!(
        "The champion's AUC is {auc_c:.3} against {auc_b:.3} for ranking by days past due."
    );
    let mut table = Table::new(&["false-positive rate!", "champion: bads found!"]);
    for (x, y) in champion.iter().step_by((champion.len() / 20).max(1)) {
        table.push(vec![format::percent(*x), format::percent(*y)]);
    }
    let axes = Axes {
        title: &title,
        x: "goods flagged (false-positive rate)",
        y: "bads found (true-positive rate)",
    };
    let svg = charts::xy_lines(
        &axes,
        &[
            (format!("champion, AUC {auc_c:.3}"), champion),
            (format!("max DPD baseline, AUC {auc_b:.3}"), baseline),
        ],
    )?;
    Ok(Chart::drawn("roc".into(), title, reading, svg, table))
}

fn calibration(report: &arq_models::Report) -> Result<Chart> {
    let title = "Calibration by decile (validation at training)".to_string();
    if report.calibration.is_empty() {
        return Ok(Chart::missing(
            "calibration".into(),
            title,
            "no calibration in the model",
        ));
    }
    let labels: Vec<String> = report
        .calibration
        .iter()
        .map(|c| c.decile.to_string())
        .collect();
    let mut table = Table::new(&["decile", "rows!", "predicted!", "observed!"]);
    for c in &report.calibration {
        table.push(vec![
            c.decile.to_string(),
            format::count(c.rows as i64),
            format::percent(c.mean_predicted),
            format::percent(c.observed_rate),
        ]);
    }
    let worst = report
        .calibration
        .iter()
        .max_by(|a, b| {
            (a.mean_predicted - a.observed_rate)
                .abs()
                .total_cmp(&(b.mean_predicted - b.observed_rate).abs())
        })
        .map(|c| (c.decile, c.mean_predicted, c.observed_rate));
    let reading = match worst {
        Some((d, p, o)) => format!(
            "The widest gap is in decile {d}: {} predicted, {} observed.",
            format::percent(p),
            format::percent(o)
        ),
        None => String::new(),
    };
    let series = vec![
        Series {
            name: "predicted PD".into(),
            values: report
                .calibration
                .iter()
                .map(|c| Some(c.mean_predicted * 100.0))
                .collect(),
        },
        Series {
            name: "observed bad rate".into(),
            values: report
                .calibration
                .iter()
                .map(|c| Some(c.observed_rate * 100.0))
                .collect(),
        },
    ];
    let axes = Axes {
        title: &title,
        x: "decile of predicted PD (1 = riskiest)",
        y: "% of rows",
    };
    let svg = charts::lines(&axes, &labels, &series, None)?;
    Ok(Chart::drawn(
        "calibration".into(),
        title,
        reading,
        svg,
        table,
    ))
}

fn distribution(labelled: &Labelled) -> Result<Chart> {
    let title = "PD of goods and bads (labelled snapshots)".to_string();
    let edges: Vec<f64> = (1..10).map(|i| i as f64 / 10.0).collect();
    let share = |want: bool| {
        let pds: Vec<f64> = labelled
            .pd
            .iter()
            .zip(&labelled.bad)
            .filter(|(_, b)| **b == want)
            .map(|(p, _)| *p)
            .collect();
        metrics::bin_shares(&pds, &edges)
    };
    let (goods, bads) = (share(false), share(true));
    let labels: Vec<String> = (0..10)
        .map(|i| format!("{}–{} %", i * 10, i * 10 + 10))
        .collect();
    let mut table = Table::new(&["PD", "goods!", "bads!"]);
    for i in 0..10 {
        table.push(vec![
            labels[i].clone(),
            format::percent(goods[i]),
            format::percent(bads[i]),
        ]);
    }
    let (low_goods, low_bads) = (goods[0], bads[0]);
    let reading = format!(
        "{} of goods and {} of bads have a PD under 10 %.",
        format::percent(low_goods),
        format::percent(low_bads)
    );
    let series = vec![
        Series {
            name: "goods".into(),
            values: goods.iter().map(|g| Some(g * 100.0)).collect(),
        },
        Series {
            name: "bads".into(),
            values: bads.iter().map(|b| Some(b * 100.0)).collect(),
        },
    ];
    let axes = Axes {
        title: &title,
        x: "PD band",
        y: "% of the group",
    };
    let svg = charts::lines(&axes, &labels, &series, None)?;
    Ok(Chart::drawn(
        "score-distribution".into(),
        title,
        reading,
        svg,
        table,
    ))
}

fn psi_chart(risk: &arq_models::RiskModel, pds: &[f64], psi: f64) -> Result<Chart> {
    let title = "Today's PDs against training (population stability)".to_string();
    if pds.is_empty() {
        return Ok(Chart::missing(
            "psi".into(),
            title,
            "no customer scored today",
        ));
    }
    let today = metrics::bin_shares(pds, &risk.psi_edges);
    let labels: Vec<String> = (1..=today.len()).map(|b| b.to_string()).collect();
    let mut table = Table::new(&["training decile", "training!", "today!"]);
    for (i, label) in labels.iter().enumerate() {
        table.push(vec![
            label.clone(),
            format::percent(risk.psi_reference.get(i).copied().unwrap_or(0.0)),
            format::percent(today[i]),
        ]);
    }
    let reading = format!(
        "PSI {psi:.3}: {} (below 0.1 stable, 0.1–0.25 some shift, above 0.25 retrain).",
        metrics::psi_verdict(psi)
    );
    let series = vec![
        Series {
            name: "training".into(),
            values: risk.psi_reference.iter().map(|s| Some(s * 100.0)).collect(),
        },
        Series {
            name: "today".into(),
            values: today.iter().map(|s| Some(s * 100.0)).collect(),
        },
    ];
    let axes = Axes {
        title: &title,
        x: "bin of the training PDs' deciles",
        y: "% of customers",
    };
    let svg = charts::lines(&axes, &labels, &series, None)?;
    Ok(Chart::drawn("psi".into(), title, reading, svg, table))
}

fn reasons(today: &Scores) -> Result<Chart> {
    let title =
        "Most frequent first reasons today (customers not yet 90+ days past due)".to_string();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for r in 0..today.len() {
        let first = &today.reasons[0];
        if !today.late_stage.value(r) && !first.is_null(r) {
            *counts.entry(first.value(r)).or_default() += 1;
        }
    }
    // The ten most frequent, ties by name.
    let mut rows: Vec<(&str, i64)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    rows.truncate(10);
    if rows.is_empty() {
        return Ok(Chart::missing(
            "reasons".into(),
            title,
            "no reason codes today",
        ));
    }
    let mut labels = Vec::new();
    let mut values = Vec::new();
    let mut table = Table::new(&["reason", "customers!"]);
    for (reason, n) in rows {
        let reason = reason.to_string();
        table.push(vec![reason.clone(), format::count(n)]);
        labels.push(reason);
        values.push(n as f64);
    }
    let reading = format!(
        "\"{}\" is the most frequent first reason ({} customers).",
        labels[0],
        format::count(values[0] as i64)
    );
    let axes = Axes {
        title: &title,
        x: "customers",
        y: "",
    };
    let svg = charts::bars(&axes, &labels, &values)?;
    Ok(Chart::drawn("reasons".into(), title, reading, svg, table))
}

/// The queue order replayed on recent snapshots (`arq backtest`): the share of the next 90
/// days' newly-bad balance in the first 20 % of the queue, for arq's order, oldest-first
/// and largest-first, one chart per currency.
fn backtest(rows: &[BacktestRow], without_night: usize) -> Result<Vec<Chart>> {
    let key = "backtest".to_string();
    let title = "Backtest: newly-bad balance in the first 20 % of the queue".to_string();
    if rows.is_empty() {
        let why = match without_night {
            0 => "no snapshot in these months whose following 90 days are in the warehouse",
            _ => NO_NIGHT,
        };
        return Ok(vec![Chart::missing(key, title, why)]);
    }
    let mut by_currency: BTreeMap<&str, Vec<&BacktestRow>> = BTreeMap::new();
    for row in rows {
        by_currency
            .entry(row.currency.as_str())
            .or_default()
            .push(row);
    }
    let names = ["arq's order", "oldest first", "largest first"];
    let mut charts = Vec::new();
    for (currency, rows) in by_currency {
        let key = format!("backtest-{currency}");
        let title =
            format!("Backtest: newly-bad balance in the first 20 % of the queue ({currency})");
        let months: Vec<String> = rows.iter().map(|r| dates::text(r.day)).collect();
        let mut table = Table::new(&[
            "snapshot",
            "newly bad!",
            "arq top 10 %!",
            "arq top 20 %!",
            "oldest first top 20 %!",
            "largest first top 20 %!",
        ]);
        for r in &rows {
            table.push(vec![
                dates::text(r.day),
                format::count(r.newly_bad as i64),
                format::percent(r.capture[0].0),
                format::percent(r.capture[0].1),
                format::percent(r.capture[1].1),
                format::percent(r.capture[2].1),
            ]);
        }
        let mean = |k: usize| rows.iter().map(|r| r.capture[k].1).sum::<f64>() / rows.len() as f64;
        let reading = format!(
            "Over {} snapshots the first 20 % of arq's queue held {} of the newly-bad balance, \
             against {} oldest-first and {} largest-first.",
            rows.len(),
            format::percent(mean(0)),
            format::percent(mean(1)),
            format::percent(mean(2))
        );
        let series: Vec<Series> = (0..ORDERINGS.len())
            .map(|k| Series {
                name: names[k].to_string(),
                values: rows.iter().map(|r| Some(r.capture[k].1 * 100.0)).collect(),
            })
            .collect();
        let axes = Axes {
            title: &title,
            x: "snapshot",
            y: "% of the newly-bad balance",
        };
        let svg = charts::lines(&axes, &months, &series, None)?;
        charts.push(Chart::drawn(key, title, reading, svg, table));
    }
    Ok(charts)
}
