//! The model artifact (JSON, versioned) and scoring with it: probability of default,
//! scorecard points and reason codes.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::binning::BinnedScorecard;
use crate::encoding::{Encoding, Feature, MISSING_LEVEL, Scaler, design_matrix, numeric_values};
use crate::error::{ModelError, Result};
use crate::forest::Forest;
use crate::reasons::{self, Adverse, ReasonRule};
use crate::report::Report;
pub use crate::scaling::Scorecard;

/// The artifact format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What the model was trained on, which decides how it can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// arq's warehouse features (models/sql/features.sql): usable by `arq score --as-of`,
    /// `risk_scores()` and the nightly job.
    WarehouseFeatures,
    /// Any labelled table (`arq train --table`): usable on tables with the same columns.
    Table,
}

/// What the model was trained and validated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// Source: a warehouse folder or a table file.
    pub source: String,
    /// First and last training snapshot (or `null` for tables without a time column).
    pub train_from: Option<String>,
    pub train_to: Option<String>,
    pub validation_from: Option<String>,
    pub validation_to: Option<String>,
    pub train_rows: usize,
    pub train_bads: usize,
    pub validation_rows: usize,
    pub validation_bads: usize,
    /// FNV-1a 64 over the labels and raw feature values of the rows the shipped model was
    /// fitted on (every labelled row after a refit), in row order.
    pub fingerprint: String,
    /// The shipped model was fitted again on every labelled row after validation (the
    /// figures above and the report are the held-out fit's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit: Option<Refit>,
}

/// The rows of the refit that made the shipped model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refit {
    pub rows: usize,
    pub bads: usize,
    /// First and last snapshot of those rows (`null` for tables without a time column).
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The fitted champion: everything needed to score, explain and audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskModel {
    pub format_version: u32,
    pub kind: ModelKind,
    /// The label column (`went_bad` for warehouse models).
    pub label: String,
    /// Columns carried through scoring but not used as features.
    pub id_columns: Vec<String>,
    /// Input columns, in the order `risk_score(...)` takes them.
    pub features: Vec<Feature>,
    /// The design columns after one-hot encoding, in coefficient order.
    pub design_columns: Vec<String>,
    pub scaler: Scaler,
    /// Coefficients on standardized design columns; positive = raises the PD of going bad.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    pub scorecard: Scorecard,
    pub training: TrainingWindow,
    /// Inner edges of the training PDs' deciles and the training shares per bin, for the
    /// population stability index of any scored population.
    pub psi_edges: Vec<f64>,
    pub psi_reference: Vec<f64>,
    /// The validation report (champion, the other candidates, baseline).
    pub report: Report,
    /// Which candidate scores: the logistic regression on the standardized design
    /// columns (`coefficients`), the binned scorecard (`binned`) or the forest (`forest`).
    #[serde(default)]
    pub champion: Champion,
    /// The binned scorecard candidate: bins, WoE, points (kept whichever candidate won).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binned: Option<BinnedScorecard>,
    /// The random forest over the standardized design columns, when it is the champion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forest: Option<Forest>,
}

/// The candidate that scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Champion {
    #[default]
    Logistic,
    BinnedScorecard,
    Forest,
}

/// Scores of a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Probability of going bad.
    pub pd: Vec<f64>,
    /// Scorecard points.
    pub points: Vec<i32>,
    /// Up to three reasons per row, strongest first.
    pub reasons: Vec<Vec<String>>,
}

impl RiskModel {
    /// Parses and checks an artifact; `name` is used in messages.
    pub fn from_json(text: &str, name: &str) -> Result<RiskModel> {
        let artifact_error = |message: String| ModelError::Artifact {
            path: name.to_string(),
            message,
        };
        let version: serde_json::Value =
            serde_json::from_str(text).map_err(|e| artifact_error(format!("not JSON: {e}")))?;
        match version.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(artifact_error(format!(
                    "format version {v}, this arq reads version {FORMAT_VERSION}: retrain with `arq train`"
                )));
            }
            None => return Err(artifact_error("no format_version: not an arq model".into())),
        }
        let model: RiskModel = serde_json::from_value(version)
            .map_err(|e| artifact_error(format!("not a valid arq model: {e}")))?;
        model.check().map_err(artifact_error)?;
        Ok(model)
    }

    /// Internal consistency of the artifact.
    fn check(&self) -> std::result::Result<(), String> {
        let width: usize = self.features.iter().map(Feature::width).sum();
        let n = self.design_columns.len();
        if width != n
            || self.coefficients.len() != n
            || self.scaler.mean.len() != n
            || self.scaler.std.len() != n
        {
            return Err(format!(
                "{} design columns, {} from the features, {} coefficients, {} scaler entries: the file is damaged",
                n,
                width,
                self.coefficients.len(),
                self.scaler.mean.len()
            ));
        }
        if self.features.is_empty() {
            return Err("no features".into());
        }
        if self.scaler.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.coefficients.iter().any(|c| !c.is_finite())
            || !self.intercept.is_finite()
        {
            return Err(
                "coefficients or scaler are not finite numbers: the file is damaged".into(),
            );
        }
        if let Some(binned) = &self.binned {
            let names: Vec<&str> = binned.features.iter().map(|f| f.name.as_str()).collect();
            if names != self.feature_names()
                || binned.coefficients.len() != names.len()
                || binned.coefficients.iter().any(|c| !c.is_finite())
                || !binned.intercept.is_finite()
                || binned
                    .features
                    .iter()
                    .any(|f| f.bins.iter().any(|b| !b.woe.is_finite()))
            {
                return Err(
                    "the binned scorecard does not match the features or is not finite: the \
                     file is damaged"
                        .into(),
                );
            }
        } else if self.champion == Champion::BinnedScorecard {
            return Err("the champion is the binned scorecard, which the file lacks".into());
        }
        match &self.forest {
            Some(forest) => forest.check(n)?,
            None if self.champion == Champion::Forest => {
                return Err("the champion is the forest, which the file lacks".into());
            }
            None => {}
        }
        self.scorecard.validate().map_err(|e| e.to_string())
    }

    /// The artifact's JSON text.
    pub fn to_json(&self) -> Result<String> {
        let mut json = serde_json::to_string_pretty(self)
            .map_err(|e| ModelError::Training(format!("cannot serialize the model: {e}")))?;
        json.push('\n');
        Ok(json)
    }

    /// Names of the input features, in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    /// The index in `schema` of each feature, checking names and types; `model` names the
    /// artifact in messages.
    pub fn bind(&self, schema: &Schema, model: &str) -> Result<Vec<usize>> {
        self.features
            .iter()
            .map(|feature| {
                let index = schema
                    .index_of(&feature.name)
                    .map_err(|_| ModelError::Artifact {
                        path: model.to_string(),
                        message: format!(
                            "the data has no column `{}` (the model needs {})",
                            feature.name,
                            self.feature_names().join(", ")
                        ),
                    })?;
                feature.check_type(schema.field(index).data_type(), model)?;
                Ok(index)
            })
            .collect()
    }

    /// Standardized design matrix of feature columns given in the model's order.
    pub fn standardized(&self, columns: &[ArrayRef]) -> Result<Array2<f64>> {
        let mut x = design_matrix(&self.features, columns)?;
        self.scaler.transform(&mut x);
        Ok(x)
    }

    /// Log-odds of going bad for each row of a standardized matrix.
    fn log_odds(&self, z: &Array2<f64>) -> Vec<f64> {
        crate::logistic::log_odds(z.view(), &self.coefficients, self.intercept)
    }

    /// The binned scorecard when it is the champion.
    fn binned_champion(&self) -> Option<&BinnedScorecard> {
        match self.champion {
            Champion::BinnedScorecard => self.binned.as_ref(),
            _ => None,
        }
    }

    /// The forest when it is the champion.
    fn forest_champion(&self) -> Option<&Forest> {
        match self.champion {
            Champion::Forest => self.forest.as_ref(),
            _ => None,
        }
    }

    /// PDs of rows whose feature columns are given in the model's order.
    pub fn probabilities(&self, columns: &[ArrayRef]) -> Result<Vec<f64>> {
        let pd = match self.binned_champion() {
            Some(binned) => binned
                .log_odds(columns)?
                .into_iter()
                .map(logistic)
                .collect(),
            None => self.probabilities_of(&self.standardized(columns)?),
        };
        check_probabilities(&pd)?;
        Ok(pd)
    }

    /// The champion's PD of each standardized row (not for the scorecard, whose PD is
    /// the one its points stand for).
    fn probabilities_of(&self, z: &Array2<f64>) -> Vec<f64> {
        match self.forest_champion() {
            Some(forest) => forest.probabilities(z.view()),
            None => self.log_odds(z).into_iter().map(logistic).collect(),
        }
    }

    /// The points of each row, as [`RiskModel::score`] gives them.
    pub fn points(&self, columns: &[ArrayRef]) -> Result<Vec<i32>> {
        match self.binned_champion() {
            Some(binned) => binned.points(columns),
            None => self
                .probabilities(columns)?
                .iter()
                .map(|&p| self.scorecard.points_i32(p))
                .collect(),
        }
    }

    /// PD, points and the top `reasons` reasons of each row. A binned scorecard's points
    /// are the sum of the row's bins' points; a logistic or forest champion's are the
    /// scaling of the PD.
    pub fn score(&self, columns: &[ArrayRef], reasons: usize) -> Result<Scored> {
        let z = self.standardized(columns)?;
        // A scorecard's PD is the one its points stand for: the points once, then the PD.
        let (pd, points) = match self.binned_champion() {
            Some(binned) => {
                let points = binned.points(columns)?;
                let pd: Vec<f64> = binned
                    .log_odds_of_points(&points)
                    .into_iter()
                    .map(logistic)
                    .collect();
                check_probabilities(&pd)?;
                (pd, points)
            }
            None => {
                let pd = self.probabilities_of(&z);
                check_probabilities(&pd)?;
                let points = pd
                    .iter()
                    .map(|&p| self.scorecard.points_i32(p))
                    .collect::<Result<Vec<i32>>>()?;
                (pd, points)
            }
        };
        let texts = self.reasons(&z, columns, reasons)?;
        Ok(Scored {
            pd,
            points,
            reasons: texts,
        })
    }

    /// Reason codes, as adverse-action reasons are given: the features that raise this
    /// row's risk the most against the portfolio's typical customer (the champion's
    /// contributions, [`RiskModel::contribution_matrix`]: for the logistic regression
    /// coefficient × standardized value, summed over a text feature's levels, measured
    /// from the training mean), strongest first. Only contributions above zero count, and
    /// for arq's own features ([`crate::reasons::reason_rule`]) only values on the
    /// feature's adverse side (and, for features where higher is worse, above zero): a
    /// favourable value (no disputes, pays early) is never a reason, whatever sign the
    /// coefficient took; features that say one thing in other
    /// words are named once. Fewer than `k` reasons when fewer factors raise the risk.
    fn reasons(&self, z: &Array2<f64>, columns: &[ArrayRef], k: usize) -> Result<Vec<Vec<String>>> {
        let values = self.describe_values(columns)?;
        let spans = self.spans();
        let contributions = self.contribution_rows(z, columns)?;
        Ok(self
            .pick_reasons(z, &contributions, &values, k)
            .into_iter()
            .enumerate()
            .map(|(row, picked)| {
                picked
                    .into_iter()
                    .map(|j| {
                        // For a number: is the value above the training mean?
                        let high = spans[j].clone().map(|d| z[[row, d]]).sum::<f64>() >= 0.0;
                        reason_text(&self.features[j], &values[j][row], high)
                    })
                    .collect()
            })
            .collect())
    }

    /// The features (indices in the model's order) each row's reason codes name,
    /// strongest first: the choice [`RiskModel::score`] words.
    pub fn reason_features(&self, columns: &[ArrayRef], k: usize) -> Result<Vec<Vec<usize>>> {
        let z = self.standardized(columns)?;
        let contributions = self.contribution_rows(&z, columns)?;
        Ok(self.pick_reasons(&z, &contributions, &self.describe_values(columns)?, k))
    }

    fn pick_reasons(
        &self,
        z: &Array2<f64>,
        contributions: &[Vec<f64>],
        values: &[Vec<RawValue>],
        k: usize,
    ) -> Vec<Vec<usize>> {
        let spans = self.spans();
        let rules: Vec<Option<ReasonRule>> = self
            .features
            .iter()
            .map(|f| f.reason_high.as_ref().and(reasons::reason_rule(&f.name)))
            .collect();
        z.rows()
            .into_iter()
            .enumerate()
            .map(|(row, zrow)| {
                let zrow = zrow.to_vec();
                let mut picked: Vec<(usize, f64)> = contributions[row]
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|&(j, c)| {
                        let side: f64 = spans[j].clone().map(|d| zrow[d]).sum();
                        c > 1e-9
                            && match rules[j].map(|r| r.adverse) {
                                None => true,
                                // A zero or negative count, share or number of days
                                // (no disputes, paid early) is never against anyone.
                                Some(Adverse::High) => {
                                    side > 0.0
                                        && !matches!(values[j][row], RawValue::Number(v) if v <= 0.0)
                                }
                                Some(Adverse::Low) => side < 0.0,
                                Some(Adverse::Never) => false,
                            }
                    })
                    .collect();
                picked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let mut groups = Vec::new();
                picked
                    .into_iter()
                    .filter(|&(j, _)| {
                        let group = rules[j].map_or(self.features[j].name.as_str(), |r| r.group);
                        let new = !groups.contains(&group);
                        groups.push(group);
                        new
                    })
                    .take(k)
                    .map(|(j, _)| j)
                    .collect()
            })
            .collect()
    }

    /// The design columns of each feature.
    fn spans(&self) -> Vec<std::ops::Range<usize>> {
        let mut spans = Vec::with_capacity(self.features.len());
        let mut offset = 0;
        for f in &self.features {
            spans.push(offset..offset + f.width());
            offset += f.width();
        }
        spans
    }

    /// Each feature's contribution to one standardized row's log-odds, against the
    /// training mean (where every standardized value is 0).
    fn contributions(&self, zrow: &[f64], spans: &[std::ops::Range<usize>]) -> Vec<f64> {
        spans
            .iter()
            .map(|span| span.clone().map(|d| zrow[d] * self.coefficients[d]).sum())
            .collect()
    }

    /// Each feature's contribution to each row's log-odds (rows of `columns`, features in
    /// the model's order): what the reason codes rank.
    pub fn contribution_matrix(&self, columns: &[ArrayRef]) -> Result<Vec<Vec<f64>>> {
        let z = self.standardized(columns)?;
        self.contribution_rows(&z, columns)
    }

    /// The champion's contributions: coefficient × standardized value for the logistic
    /// regression, coefficient × (the row's WoE − the training average WoE) for the
    /// binned scorecard — both against the portfolio's typical customer, in log-odds —
    /// and the path contributions to the PD for the forest ([`crate::forest`]; against
    /// the mean root rate, in PD), summed over a feature's design columns.
    fn contribution_rows(&self, z: &Array2<f64>, columns: &[ArrayRef]) -> Result<Vec<Vec<f64>>> {
        if let Some(binned) = self.binned_champion() {
            return binned.contributions(columns);
        }
        let spans = self.spans();
        if let Some(forest) = self.forest_champion() {
            let by_column = forest.contributions(z.view());
            return Ok(by_column
                .rows()
                .into_iter()
                .map(|row| {
                    spans
                        .iter()
                        .map(|span| span.clone().map(|d| row[d]).sum())
                        .collect()
                })
                .collect());
        }
        Ok(z.rows()
            .into_iter()
            .map(|zrow| self.contributions(&zrow.to_vec(), &spans))
            .collect())
    }

    /// The raw value of each feature of each row, for reason texts.
    fn describe_values(&self, columns: &[ArrayRef]) -> Result<Vec<Vec<RawValue>>> {
        self.features
            .iter()
            .zip(columns)
            .map(|(feature, column)| match &feature.encoding {
                Encoding::Numeric { .. } => Ok(numeric_values(&feature.name, column)?
                    .into_iter()
                    .map(|v| v.map_or(RawValue::Missing, RawValue::Number))
                    .collect()),
                Encoding::Categorical { .. } => {
                    let text = cast(column, &DataType::Utf8)?;
                    let text = text.as_string::<i32>();
                    Ok((0..text.len())
                        .map(|i| {
                            if text.is_valid(i) {
                                RawValue::Text(text.value(i).to_string())
                            } else {
                                RawValue::Missing
                            }
                        })
                        .collect())
                }
            })
            .collect()
    }

    /// Population stability of `pd` against the training population.
    pub fn psi(&self, pd: &[f64]) -> f64 {
        crate::metrics::psi(
            &self.psi_reference,
            &crate::metrics::bin_shares(pd, &self.psi_edges),
        )
    }
}

enum RawValue {
    Number(f64),
    Text(String),
    Missing,
}

/// The sentence for a feature that pushes the PD up.
fn reason_text(feature: &Feature, value: &RawValue, high: bool) -> String {
    let template = if high {
        feature.reason_high.as_deref()
    } else {
        feature.reason_low.as_deref()
    };
    match value {
        RawValue::Text(level) => match template {
            Some(t) => t.replace("{value}", level),
            None => format!("{} is {level}", feature.name),
        },
        RawValue::Missing => match &feature.encoding {
            Encoding::Categorical { .. } => format!("{} is {MISSING_LEVEL}", feature.name),
            Encoding::Numeric { .. } => format!("{}: no data", feature.name),
        },
        RawValue::Number(v) => {
            let fill = |t: &str| {
                t.replace("{value}", &format_number(*v))
                    .replace("{percent}", &format!("{:.0} %", v * 100.0))
            };
            match template {
                Some(t) => fill(t),
                None if high => format!("{} is high ({})", feature.name, format_number(*v)),
                None => format!("{} is low ({})", feature.name, format_number(*v)),
            }
        }
    }
}

/// A number for people: whole numbers without decimals, others with one (a value that
/// rounds to a whole number at one decimal shows as that whole number).
fn format_number(v: f64) -> String {
    let tenths = (v * 10.0).round();
    if tenths % 10.0 == 0.0 {
        format!("{}", (tenths / 10.0) as i64)
    } else {
        format!("{:.1}", tenths / 10.0)
    }
}

/// Every PD is a number: features too extreme for the arithmetic (opposite infinities
/// in the log-odds) are an error naming the row, never a NaN probability.
fn check_probabilities(pd: &[f64]) -> Result<()> {
    match pd.iter().position(|p| p.is_nan()) {
        Some(row) => Err(ModelError::Data(format!(
            "row {}: the feature values are too extreme to give a probability",
            row + 1
        ))),
        None => Ok(()),
    }
}

/// The logistic function.
pub fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// FNV-1a 64 of a byte stream, as 16 hex digits.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scorecard_gives_600_at_50_to_1_and_20_more_per_doubling() {
        let s = Scorecard::default();
        assert_eq!(s.points_for(1.0 / 51.0), 600.0);
        assert_eq!(s.points_for(1.0 / 101.0), 620.0);
        assert_eq!(s.points_for(1.0 / 26.0), 580.0);
        // PD 1 stays finite.
        assert!(s.points_for(1.0).is_finite());
        let custom = Scorecard {
            points: 500.0,
            odds: 20.0,
            pdo: 40.0,
        };
        assert_eq!(custom.points_for(1.0 / 21.0), 500.0);
        assert_eq!(custom.points_for(1.0 / 41.0), 540.0);
        assert!(Scorecard { pdo: 0.0, ..s }.validate().is_err());
        assert!(Scorecard { odds: -1.0, ..s }.validate().is_err());
    }

    #[test]
    fn fingerprint_is_fnv1a() {
        let mut f = Fingerprint::default();
        f.update(b"a");
        assert_eq!(f.hex(), "af63dc4c8601ec8c");
    }

    /// The bundled model, with one row of features built per feature: numbers at the
    /// training mean plus `shift(name)` standard deviations, texts as given.
    fn bundled() -> RiskModel {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/models/default.json");
        RiskModel::from_json(&std::fs::read_to_string(path).unwrap(), "default.json").unwrap()
    }

    fn row(
        model: &RiskModel,
        shift: &dyn Fn(&str) -> f64,
        text: &dyn Fn(&str) -> String,
    ) -> Vec<ArrayRef> {
        let mut d = 0;
        model
            .features
            .iter()
            .map(|f| {
                let column: ArrayRef = match &f.encoding {
                    Encoding::Numeric { .. } => {
                        let v = model.scaler.mean[d] + shift(&f.name) * model.scaler.std[d];
                        std::sync::Arc::new(datafusion::arrow::array::Float64Array::from(vec![v]))
                    }
                    Encoding::Categorical { .. } => {
                        std::sync::Arc::new(datafusion::arrow::array::StringArray::from(vec![
                            text(&f.name),
                        ]))
                    }
                };
                d += f.width();
                column
            })
            .collect()
    }

    #[test]
    fn reasons_are_adverse_values_named_once() {
        // The logistic regression's reasons (the coefficients are set by hand below).
        let mut model = RiskModel {
            champion: Champion::Logistic,
            ..bundled()
        };
        let index = |m: &RiskModel, name: &str| {
            let mut d = 0;
            for f in &m.features {
                if f.name == name {
                    return d;
                }
                d += f.width();
            }
            panic!("no feature {name}")
        };
        // A coefficient that rewards disputes: a customer with fewer disputes than typical
        // gets a positive contribution from it, yet "no disputes" is not a reason.
        let disputes = index(&model, "open_disputes");
        model.coefficients[disputes] = -2.0;
        let max_dpd = index(&model, "max_dpd");
        let weighted = index(&model, "weighted_dpd");
        model.coefficients[max_dpd] = 1.0;
        model.coefficients[weighted] = 0.9;
        let shift = |name: &str| match name {
            "open_disputes" => -1.0,
            "max_dpd" | "weighted_dpd" => 3.0,
            _ => 0.0,
        };
        let columns = row(&model, &shift, &|name| {
            if name == "worst_bucket" {
                "61-90".into()
            } else {
                "enterprise".into()
            }
        });
        let scored = model.score(&columns, 3).unwrap();
        let contributions = model.contribution_matrix(&columns).unwrap();
        assert!(
            contributions[0][model
                .features
                .iter()
                .position(|f| f.name == "open_disputes")
                .unwrap()]
                > 0.0
        );
        let reasons = &scored.reasons[0];
        assert!(!reasons.is_empty());
        assert!(
            reasons[0].starts_with("oldest open invoice is"),
            "{reasons:?}"
        );
        for r in reasons {
            assert!(
                !r.contains("dispute"),
                "a favourable value as a reason: {reasons:?}"
            );
            assert!(
                !r.contains("aging bucket") && !r.contains("segment"),
                "{reasons:?}"
            );
            assert!(
                !r.contains("days past due on average"),
                "max_dpd and weighted_dpd are one group: {reasons:?}"
            );
        }
        // The typical customer has nothing against it: no reasons at all.
        let typical = row(&model, &|_| 0.0, &|name| {
            if name == "worst_bucket" {
                "current".into()
            } else {
                "enterprise".into()
            }
        });
        let scored = model.score(&typical, 3).unwrap();
        assert!(scored.reasons[0].is_empty(), "{:?}", scored.reasons[0]);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_number(75.0), "75");
        assert_eq!(format_number(2.345), "2.3");
        assert_eq!(format_number(28.96), "29");
        assert_eq!(format_number(-0.04), "0");
    }
}
