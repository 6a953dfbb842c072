//! `arq report`: the month's review a collections manager forwards, on one self-contained
//! HTML page (inline SVG charts and CSS, no JavaScript, nothing fetched; a print
//! stylesheet for A4). Every figure comes from SQL over the session `arq sql` opens
//! ([`rows::Rows`]), so the report and a query cannot disagree. HTML comes from a
//! minijinja template that escapes every value (customer names and any warehouse text);
//! only the SVG, which plotters escapes itself, is inserted as markup.
//!
//! Sections built so far: portfolio ([`portfolio`]), the collectors' month
//! ([`collectors`]), the model ([`model`]) and credit ([`credit`]).

pub mod charts;
pub mod collectors;
pub mod credit;
pub mod format;
pub mod model;
pub mod nights;
pub mod portfolio;
pub mod rows;
pub mod view;

use chrono::{Datelike, Months, NaiveDate};
use datafusion::prelude::SessionContext;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};

use crate::error::{ArqError, Result};

/// The CEI target line when none is given (a common collections benchmark).
pub const DEFAULT_CEI_TARGET: f64 = 80.0;

/// The sections of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Section {
    /// KPI tiles, aging, DSO and CEI trends, roll rates, top overdue, segment and region.
    Portfolio,
    /// Each collector's month, the CEI ranking and the special accounts.
    Collectors,
    /// The model's validation, ROC and calibration, PSI today, reason codes (needs a
    /// model).
    Model,
    /// Customers and exposure by risk class, recommended actions, over-limit customers,
    /// class migration (needs a model).
    Credit,
}

/// What the credit section reads: the snapshot's limit recommendations (`arq limits`'
/// rows: in memory, or the night's file) and the policy's risk classes from the best to
/// the worst.
pub struct CreditInput {
    pub limits: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    pub classes: Vec<String>,
}

/// The months a report covers.
#[derive(Debug, Clone)]
pub struct Period {
    /// The snapshot (`YYYY-MM-DD`).
    pub as_of: String,
    /// The snapshot before it, if any.
    pub previous: Option<String>,
    /// The complete snapshots up to it (`YYYY-MM-DD`), ascending.
    pub snapshots: Vec<String>,
    /// The first day of the first month.
    pub from: String,
    /// The snapshot date again, as the end of the metrics' range.
    pub to: String,
    pub months: u32,
    pub cei_target: f64,
}

impl Period {
    /// `months` calendar months ending with the snapshot's; `snapshots` are the
    /// warehouse's complete snapshots.
    pub fn new(
        as_of: NaiveDate,
        snapshots: &[NaiveDate],
        months: u32,
        cei_target: f64,
    ) -> Result<Period> {
        let snapshots: Vec<NaiveDate> = snapshots.iter().copied().filter(|d| *d <= as_of).collect();
        let previous = snapshots.iter().rev().find(|d| **d < as_of).copied();
        if months == 0 {
            return Err(ArqError::Usage("--months must be at least 1".into()));
        }
        let first = as_of
            .with_day(1)
            .and_then(|d| d.checked_sub_months(Months::new(months - 1)))
            .ok_or_else(|| ArqError::Usage(format!("--months {months} reaches before year 1")))?;
        Ok(Period {
            as_of: as_of.to_string(),
            previous: previous.map(|p| p.to_string()),
            snapshots: snapshots.iter().map(|d| d.to_string()).collect(),
            from: first.to_string(),
            to: as_of.to_string(),
            months,
            cei_target,
        })
    }

    /// The snapshot as days since 1970-01-01.
    pub fn as_of_day(&self) -> Result<i32> {
        day(&self.as_of)
    }

    /// The first day of the first month as days since 1970-01-01.
    pub fn from_day(&self) -> Result<i32> {
        day(&self.from)
    }
}

fn day(text: &str) -> Result<i32> {
    arq_udfs::dates::parse(text)
        .map(arq_udfs::dates::to_days)
        .ok_or_else(|| ArqError::Internal(format!("the report's date {text} does not parse")))
}

/// What the header names.
pub struct Source<'a> {
    pub warehouse: &'a str,
    pub model: Option<&'a str>,
}

/// A built report: the page, and the backtest rows its model section showed (the nightly
/// keeps them, so that later nights and reports need not replay those queues again).
pub struct Built {
    pub html: String,
    pub backtest: Vec<arq_models::backtest::BacktestRow>,
    /// The portfolio series of every month of the range (None without the portfolio
    /// section).
    pub facts: Option<Vec<portfolio::Facts>>,
    /// The labelled snapshots' outcomes the model section read (empty without it).
    pub outcomes: nights::Outcomes,
}

/// Builds the report's HTML.
pub async fn build(
    ctx: &SessionContext,
    period: &Period,
    sections: &[Section],
    source: &Source<'_>,
    credit: Option<&CreditInput>,
    model: Option<&model::ModelInput<'_>>,
    nights: &nights::Nights,
) -> Result<Built> {
    let wants_model = sections.contains(&Section::Model);
    let wants_portfolio = sections.contains(&Section::Portfolio);
    // The snapshot's scores, for the top overdue customers' PD and the model's PSI: as the
    // night computed them, else scored once here.
    let started = std::time::Instant::now();
    let today = match model.filter(|_| wants_portfolio || wants_model) {
        Some(input) => Some(model::scores(ctx, input, nights, period.as_of_day()?).await?),
        None => None,
    };
    rows::timing("the snapshot's scores", started);
    let wants_credit = sections.contains(&Section::Credit);
    // The sections are independent: built side by side, their queries taking turns
    // (`Rows::query` runs one at a time).
    let portfolio = async {
        match wants_portfolio {
            true => {
                // The earlier months as their own nights, else the newest night, kept
                // them; the rest computed.
                let known = portfolio::Known::from_kept(period, &nights.kept_facts(), |night| {
                    nights.facts_of_night(night)
                });
                Ok(Some(
                    portfolio::build(ctx, period, today.as_ref(), &known).await?,
                ))
            }
            false => Ok(None),
        }
    };
    let collectors = async {
        match sections.contains(&Section::Collectors) {
            true => collectors::build(ctx, period, nights).await,
            false => Ok(None),
        }
    };
    let model_view = async {
        match (model.filter(|_| wants_model), &today) {
            (Some(m), Some(today)) => {
                let started = std::time::Instant::now();
                let view = model::build(ctx, period, m, today, nights).await?;
                rows::timing("the model section", started);
                Ok(Some(view))
            }
            _ => Ok(None),
        }
    };
    let credit = async {
        match credit.filter(|_| wants_credit) {
            Some(input) => Ok(Some(
                credit::build(ctx, input.limits.clone(), &input.classes).await?,
            )),
            None => Ok(None),
        }
    };
    let (portfolio, collectors, model_view, credit): (_, _, _, Option<credit::Credit>) =
        futures::try_join!(portfolio, collectors, model_view, credit)?;
    let (portfolio, facts) = match portfolio {
        Some((view, facts)) => (Some(view), Some(facts)),
        None => (None, None),
    };
    let mut shown = Vec::new();
    if portfolio.is_some() {
        shown.push(context! { id => "portfolio", title => "Portfolio" });
    }
    if sections.contains(&Section::Collectors) {
        shown.push(context! { id => "collectors", title => "Collectors" });
    }
    if wants_model {
        shown.push(context! { id => "model", title => "Model" });
    }
    if wants_credit {
        shown.push(context! { id => "credit", title => "Credit" });
    }
    let mut env = Environment::new();
    env.add_template("report.html", include_str!("report.html"))
        .map_err(template_error)?;
    let template = env.get_template("report.html").map_err(template_error)?;
    let html = template
        .render(context! {
            version => env!("CARGO_PKG_VERSION"),
            as_of => period.as_of.clone(),
            from => period.from.clone(),
            months => period.months,
            warehouse => source.warehouse,
            model => source.model,
            sections => shown,
            portfolio => Value::from(Serde(&portfolio)),
            collectors => Value::from(Serde(&collectors)),
            wants_collectors => sections.contains(&Section::Collectors),
            wants_credit => wants_credit,
            wants_model => wants_model,
            model_view => Value::from(Serde(&model_view)),
            credit => Value::from(Serde(&credit)),
            one_snapshot => period.previous.is_none(),
        })
        .map_err(template_error)?;
    let (backtest, outcomes) = match model_view {
        Some(view) => (view.backtest, view.outcomes),
        None => Default::default(),
    };
    Ok(Built {
        html,
        facts,
        backtest,
        outcomes,
    })
}

fn template_error(e: minijinja::Error) -> ArqError {
    ArqError::Internal(format!("the report template failed: {e:#}"))
}
