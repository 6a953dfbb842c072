//! The training report: how the champion, the other candidates and the baseline rank the
//! validation rows (AUC, Gini, KS, Brier, capture), the champion's calibration and the
//! PSI between training and validation PDs.

use serde::{Deserialize, Serialize};

use crate::metrics::{self, Decile};
use crate::tuning::Regularization;

/// How one ranking did on a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    pub model: String,
    pub auc: Option<f64>,
    pub gini: Option<f64>,
    pub ks: Option<f64>,
    /// Only for probabilities (not for the baseline's days past due).
    pub brier: Option<f64>,
    pub capture_top_10: Option<f64>,
    pub capture_top_20: Option<f64>,
}

impl RankingMetrics {
    pub(crate) fn of(
        model: &str,
        scores: &[f64],
        bad: &[bool],
        probabilities: bool,
    ) -> RankingMetrics {
        let auc = metrics::auc(scores, bad);
        RankingMetrics {
            model: model.to_string(),
            auc,
            gini: auc.map(|a| 2.0 * a - 1.0),
            ks: metrics::ks(scores, bad),
            brier: if probabilities {
                metrics::brier(scores, bad)
            } else {
                None
            },
            capture_top_10: metrics::capture(scores, bad, 0.10),
            capture_top_20: metrics::capture(scores, bad, 0.20),
        }
    }
}

/// The training report: out-of-time figures of champion, candidates and baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The champion on its own training rows (for over-fitting checks).
    pub champion_train: RankingMetrics,
    /// Champion, the other candidates and baseline on the validation rows.
    pub validation: Vec<RankingMetrics>,
    /// The champion's calibration by decile on the validation rows.
    pub calibration: Vec<Decile>,
    /// Population stability of the champion's PDs, training → validation.
    pub psi_train_validation: f64,
    /// The champion's L2 strength (`None` in reports of models trained before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The cross-validation that chose it (`None` when it was given with `--alpha`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regularization: Option<Regularization>,
    /// The candidates' validation AUCs and which one is the champion, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// The binned scorecard's L2 strength (on the WoE values, by cross-validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binned_alpha: Option<f64>,
    /// Each feature's information value over its scorecard bins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub information_values: Vec<InformationValue>,
}

/// A feature's information value and its number of bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InformationValue {
    pub feature: String,
    pub iv: f64,
    pub bins: usize,
}

impl Report {
    /// Every ranking with its name: the champion on its training rows ("... (training
    /// rows)"), then champion, the other candidates and baseline on the validation rows.
    pub fn rankings(&self) -> Vec<(String, &RankingMetrics)> {
        let train = (
            format!("{} (training rows)", self.champion_train.model),
            &self.champion_train,
        );
        std::iter::once(train)
            .chain(self.validation.iter().map(|m| (m.model.clone(), m)))
            .collect()
    }

    /// The report as a text table for the terminal.
    pub fn to_table(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
        let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut out = String::new();
        out.push_str(&format!(
            "{:<46} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}\n",
            "validation (out of time)", "AUC", "Gini", "KS", "Brier", "top 10 %", "top 20 %"
        ));
        for (name, m) in self.rankings() {
            out.push_str(&format!(
                "{:<46} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}\n",
                name,
                num(m.auc),
                num(m.gini),
                num(m.ks),
                num(m.brier),
                pct(m.capture_top_10),
                pct(m.capture_top_20)
            ));
        }
        match (&self.regularization, self.alpha) {
            (Some(r), _) => {
                out.push_str(&format!(
                    "\nL2 strength of the logistic regression: alpha {} (= 1/C), from {}-fold cross-validation \
                     on the training rows (folds by {}): the lowest held-out log-loss among the \
                     values whose mean AUC is within one standard error of the best\n",
                    number(r.chosen),
                    r.folds,
                    r.folds_by
                ));
                out.push_str(&format!(
                    "{:>12} {:>9} {:>7} {:>9}\n",
                    "alpha", "mean AUC", "sd", "log-loss"
                ));
                for s in &r.grid {
                    out.push_str(&format!(
                        "{:>12} {:>9.4} {:>7.4} {:>9.4}{}\n",
                        number(s.alpha),
                        s.mean_auc,
                        s.sd_auc,
                        s.mean_log_loss,
                        if s.alpha == r.chosen {
                            "  <- chosen"
                        } else {
                            ""
                        }
                    ));
                }
            }
            (None, Some(alpha)) => out.push_str(&format!(
                "\nL2 strength of the logistic regression: alpha {} (given)\n",
                number(alpha)
            )),
            (None, None) => {}
        }
        if let Some(selection) = &self.selection {
            out.push_str(&format!("\n{selection}\n"));
        }
        if !self.information_values.is_empty() {
            let mut ivs: Vec<&InformationValue> = self.information_values.iter().collect();
            ivs.sort_by(|a, b| b.iv.total_cmp(&a.iv).then(a.feature.cmp(&b.feature)));
            out.push_str(&format!(
                "\ninformation value of each feature over its scorecard bins{}\n",
                self.binned_alpha.map_or(String::new(), |a| format!(
                    " (scorecard alpha {})",
                    number(a)
                ))
            ));
            out.push_str(&format!(
                "{:<32} {:>7} {:>5}  {}\n",
                "feature", "IV", "bins", ""
            ));
            for v in ivs {
                out.push_str(&format!(
                    "{:<32} {:>7.4} {:>5}  {}\n",
                    v.feature,
                    v.iv,
                    v.bins,
                    iv_verdict(v.iv)
                ));
            }
        }
        out.push_str("\ncalibration of the champion (validation rows, riskiest decile first)\n");
        out.push_str(&format!(
            "{:>6} {:>7} {:>6} {:>10} {:>9}\n",
            "decile", "rows", "bads", "predicted", "observed"
        ));
        for d in &self.calibration {
            out.push_str(&format!(
                "{:>6} {:>7} {:>6} {:>10} {:>9}\n",
                d.decile,
                d.rows,
                d.bads,
                pct(Some(d.mean_predicted)),
                pct(Some(d.observed_rate))
            ));
        }
        out.push_str(&format!(
            "\nPSI training → validation: {:.4} ({})\n",
            self.psi_train_validation,
            metrics::psi_verdict(self.psi_train_validation),
        ));
        out
    }
}

/// The usual reading of an information value (Siddiqi).
fn iv_verdict(iv: f64) -> &'static str {
    match iv {
        v if v < 0.02 => "not predictive",
        v if v < 0.1 => "weak",
        v if v < 0.3 => "medium",
        v if v < 0.5 => "strong",
        _ => "very strong (check for leakage)",
    }
}

/// A penalty for people: 4 significant digits, plain or in powers of ten.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&v.abs()) {
        format!("{v:.3e}")
    } else {
        let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn penalties_show_four_significant_digits() {
        let shown: Vec<String> = [1e4, 1291.5497, 2.78256, 0.0059948, 7.7426e-4, 0.0]
            .into_iter()
            .map(super::number)
            .collect();
        assert_eq!(
            shown,
            ["10000", "1292", "2.783", "0.005995", "7.743e-4", "0"]
        );
    }
}
