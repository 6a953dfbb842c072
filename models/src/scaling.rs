//! The scorecard scaling: points from a probability of default.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Scorecard scaling: `score = offset + factor · ln(odds_good)`, `factor = pdo / ln 2`,
/// chosen so that odds of `odds`:1 (good:bad) score `points`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub points: f64,
    pub odds: f64,
    pub pdo: f64,
}

impl Default for Scorecard {
    fn default() -> Self {
        Scorecard {
            points: 600.0,
            odds: 50.0,
            pdo: 20.0,
        }
    }
}

/// PDs are kept inside [PD_FLOOR, 1 − PD_FLOOR] for points, so they stay finite.
const PD_FLOOR: f64 = 1e-6;

impl Scorecard {
    /// Checks the settings (positive points-to-double-odds, odds above zero).
    pub fn validate(&self) -> Result<()> {
        if !(self.pdo.is_finite() && self.pdo > 0.0) {
            return Err(ModelError::Training(format!(
                "scorecard PDO must be a positive number of points, got {}",
                self.pdo
            )));
        }
        if !(self.odds.is_finite() && self.odds > 0.0) {
            return Err(ModelError::Training(format!(
                "scorecard odds must be above zero, got {}",
                self.odds
            )));
        }
        if !self.points.is_finite() {
            return Err(ModelError::Training(
                "scorecard points must be a number".into(),
            ));
        }
        Ok(())
    }

    /// Points for a probability of default, rounded to whole points.
    pub fn points_for(&self, pd: f64) -> f64 {
        let factor = self.pdo / std::f64::consts::LN_2;
        let offset = self.points - factor * self.odds.ln();
        let pd = pd.clamp(PD_FLOOR, 1.0 - PD_FLOOR);
        (offset + factor * ((1.0 - pd) / pd).ln()).round()
    }

    /// Points for a PD as a 32-bit integer: an error for a PD that is no number, or
    /// points beyond the Int32 range (an extreme scaling) — never a saturated value.
    pub fn points_i32(&self, pd: f64) -> Result<i32> {
        if pd.is_nan() {
            return Err(ModelError::Data("a PD of NaN is not a probability".into()));
        }
        let points = self.points_for(pd);
        if points.is_finite() && points >= i32::MIN as f64 && points <= i32::MAX as f64 {
            Ok(points as i32)
        } else {
            Err(ModelError::Data(format!(
                "{points} points do not fit a 32-bit integer: the scorecard's points, odds or \
                 PDO are extreme"
            )))
        }
    }
}
