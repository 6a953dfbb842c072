//! The credit section: customers and exposure by risk class, the recommended actions with
//! their amounts, the customers over their limit, and the class migration against the
//! previous snapshot — from the same recommendations `arq limits` prints (the rows are
//! registered as a table and read with SQL, per currency).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use rust_decimal::Decimal;
use serde::Serialize;

use super::charts::{self, Axes};
use super::format;
use super::rows::Rows;
use super::view::{Chart, Matrix, Shaded, Table};
use crate::error::Result;

/// The table name the recommendations are read under.
const LIMITS: &str = "report_limit_recommendations";

#[derive(Debug, Serialize)]
pub struct Credit {
    pub policy_version: String,
    pub by_class: Table,
    pub charts: Vec<Chart>,
    pub actions: Table,
    pub over_limit: Table,
    pub over_limit_count: i64,
    pub migration: Option<Matrix>,
    pub migration_reading: String,
}

/// Builds the section from the snapshot's recommendations (`arq limits`' rows, as a table);
/// `classes` are the policy's risk classes from the best to the worst.
pub async fn build(
    ctx: &SessionContext,
    limits: Arc<dyn TableProvider>,
    classes: &[String],
) -> Result<Credit> {
    ctx.register_table(LIMITS, limits)?;
    let built = sections(ctx, classes).await;
    ctx.deregister_table(LIMITS)?;
    built
}

async fn sections(ctx: &SessionContext, order: &[String]) -> Result<Credit> {
    let classes = Rows::query(
        ctx,
        "limits by class",
        &format!(
            "SELECT currency, risk_class, count(*) AS customers, sum(exposure) AS exposure, \
             sum(current_limit) AS current_limit, sum(recommended_limit) AS recommended \
             FROM {LIMITS} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .await?;
    let mut by_class = Table::new(&[
        "currency",
        "risk class",
        "customers!",
        "exposure!",
        "current limits!",
        "recommended limits!",
    ]);
    let mut exposure: BTreeMap<String, Vec<(String, Decimal)>> = BTreeMap::new();
    for r in 0..classes.len() {
        let currency = classes.text(r, "currency")?.unwrap_or_default();
        let class = classes.text(r, "risk_class")?.unwrap_or_default();
        let amount = |name| classes.money(r, name).map(Option::unwrap_or_default);
        exposure
            .entry(currency.clone())
            .or_default()
            .push((class.clone(), amount("exposure")?));
        by_class.push(vec![
            currency.clone(),
            class,
            classes.text(r, "customers")?.unwrap_or_default(),
            format::money(&currency, amount("exposure")?),
            format::money(&currency, amount("current_limit")?),
            format::money(&currency, amount("recommended")?),
        ]);
    }
    let mut charts = Vec::new();
    for (currency, classes) in &exposure {
        let key = format!("exposure-by-class-{currency}");
        let title = format!("Exposure by risk class ({currency})");
        let mut table = Table::new(&["risk class", "exposure!"]);
        for (class, amount) in classes {
            table.push(vec![class.clone(), format::amount_text(*amount)]);
        }
        let total: Decimal = classes.iter().map(|(_, a)| *a).sum();
        let (top_class, top_amount) = classes
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .cloned()
            .unwrap_or_default();
        let reading = format!(
            "Class {top_class} carries {} of {} exposure.",
            format::money(currency, top_amount),
            format::money(currency, total)
        );
        let labels: Vec<String> = classes.iter().map(|(c, _)| c.clone()).collect();
        let values: Vec<f64> = classes
            .iter()
            .map(|(_, a)| rust_decimal::prelude::ToPrimitive::to_f64(a).unwrap_or(0.0))
            .collect();
        let axes = Axes {
            title: &title,
            x: &format!("exposure ({currency})"),
            y: "risk class",
        };
        let svg = charts::bars(&axes, &labels, &values)?;
        charts.push(Chart::drawn(key, title, reading, svg, table));
    }
    Ok(Credit {
        policy_version: policy_version(ctx).await?,
        by_class,
        charts,
        actions: actions(ctx).await?,
        over_limit_count: over_limit_count(ctx).await?,
        over_limit: over_limit(ctx).await?,
        migration: migration(ctx, order).await?,
        migration_reading: migration_reading(ctx, order).await?,
    })
}

async fn policy_version(ctx: &SessionContext) -> Result<String> {
    let rows = Rows::query(
        ctx,
        "policy version",
        &format!("SELECT DISTINCT policy_version FROM {LIMITS}"),
    )
    .await?;
    Ok(match rows.len() {
        0 => String::new(),
        _ => rows.text(0, "policy_version")?.unwrap_or_default(),
    })
}

async fn actions(ctx: &SessionContext) -> Result<Table> {
    let rows = Rows::query(
        ctx,
        "limit actions",
        &format!(
            "SELECT currency, action, count(*) AS customers, sum(current_limit) AS current_limit, \
             sum(recommended_limit) AS recommended, \
             sum(recommended_limit - current_limit) AS change \
             FROM {LIMITS} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .await?;
    let mut table = Table::new(&[
        "currency",
        "action",
        "customers!",
        "current limits!",
        "recommended limits!",
        "change!",
    ]);
    for r in 0..rows.len() {
        let currency = rows.text(r, "currency")?.unwrap_or_default();
        let amount = |name| rows.money(r, name).map(Option::unwrap_or_default);
        table.push(vec![
            currency.clone(),
            rows.text(r, "action")?.unwrap_or_default(),
            rows.text(r, "customers")?.unwrap_or_default(),
            format::money(&currency, amount("current_limit")?),
            format::money(&currency, amount("recommended")?),
            format::money(&currency, amount("change")?),
        ]);
    }
    Ok(table)
}

async fn over_limit_count(ctx: &SessionContext) -> Result<i64> {
    let rows = Rows::query(
        ctx,
        "over limit",
        &format!("SELECT count(*) AS n FROM {LIMITS} WHERE over_limit"),
    )
    .await?;
    Ok(rows.int(0, "n")?.unwrap_or_default())
}

/// The customers whose exposure is above their current limit, largest excess first per
/// currency (at most 50).
async fn over_limit(ctx: &SessionContext) -> Result<Table> {
    let rows = Rows::query(
        ctx,
        "over-limit customers",
        &format!(
            "SELECT customer_id, name, currency, exposure, current_limit, \
             exposure - current_limit AS excess, risk_class, recommended_limit, action \
             FROM {LIMITS} WHERE over_limit \
             ORDER BY currency, exposure - current_limit DESC, customer_id LIMIT 50"
        ),
    )
    .await?;
    let mut table = Table::new(&[
        "customer",
        "name",
        "currency",
        "exposure!",
        "current limit!",
        "over by!",
        "risk class",
        "recommended limit!",
        "action",
    ]);
    for r in 0..rows.len() {
        let currency = rows.text(r, "currency")?.unwrap_or_default();
        let amount = |name| rows.money(r, name).map(Option::unwrap_or_default);
        table.push(vec![
            rows.text(r, "customer_id")?.unwrap_or_default(),
            rows.text(r, "name")?.unwrap_or_default(),
            currency.clone(),
            format::amount_text(amount("exposure")?),
            format::amount_text(amount("current_limit")?),
            format::amount_text(amount("excess")?),
            rows.text(r, "risk_class")?.unwrap_or_default(),
            format::amount_text(amount("recommended_limit")?),
            rows.text(r, "action")?.unwrap_or_default(),
        ]);
    }
    Ok(table)
}

/// Customers by previous class (rows) and class today (columns), as shares of the row.
/// The position of a class in the policy (unknown classes last).
fn rank(order: &[String], class: &str) -> usize {
    order.iter().position(|c| c == class).unwrap_or(order.len())
}

async fn migration(ctx: &SessionContext, order: &[String]) -> Result<Option<Matrix>> {
    let rows = Rows::query(
        ctx,
        "class migration",
        &format!(
            "SELECT previous_class, risk_class, count(*) AS n FROM {LIMITS} \
             WHERE previous_class IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut classes: Vec<String> = Vec::new();
    for r in 0..rows.len() {
        let before = rows.text(r, "previous_class")?.unwrap_or_default();
        let now = rows.text(r, "risk_class")?.unwrap_or_default();
        classes.push(before.clone());
        classes.push(now.clone());
        *counts.entry(before).or_default().entry(now).or_default() +=
            rows.int(r, "n")?.unwrap_or(0);
    }
    classes.sort_by_key(|c| (rank(order, c), c.clone()));
    classes.dedup();
    let mut before_classes: Vec<&String> = counts.keys().collect();
    before_classes.sort_by_key(|c| (rank(order, c), (*c).clone()));
    let matrix_rows = before_classes
        .into_iter()
        .map(|before| (before, &counts[before]))
        .map(|(before, to)| {
            let total: i64 = to.values().sum();
            let cells = classes
                .iter()
                .map(|now| {
                    let n = to.get(now).copied().unwrap_or(0);
                    let mut cell = Shaded::share(Some(n as f64 / total as f64), 1.0);
                    cell.text = format!("{} ({})", format::count(n), cell.text);
                    if now == before {
                        // Staying put is the norm: shade it blue, not red.
                        cell.background = cell.background.replace("220, 60, 40", "70, 110, 180");
                    }
                    cell
                })
                .collect();
            (before.clone(), cells)
        })
        .collect();
    Ok(Some(Matrix {
        corner: "previous class → today".into(),
        columns: classes,
        rows: matrix_rows,
    }))
}

async fn migration_reading(ctx: &SessionContext, order: &[String]) -> Result<String> {
    let rows = Rows::query(
        ctx,
        "class moves",
        &format!(
            "SELECT previous_class, risk_class, count(*) AS n FROM {LIMITS} \
             WHERE previous_class IS NOT NULL GROUP BY 1, 2"
        ),
    )
    .await?;
    let (mut worse, mut better, mut compared) = (0, 0, 0);
    for r in 0..rows.len() {
        let n = rows.int(r, "n")?.unwrap_or(0);
        let before = rank(order, &rows.text(r, "previous_class")?.unwrap_or_default());
        let now = rank(order, &rows.text(r, "risk_class")?.unwrap_or_default());
        compared += n;
        match now.cmp(&before) {
            std::cmp::Ordering::Greater => worse += n,
            std::cmp::Ordering::Less => better += n,
            std::cmp::Ordering::Equal => {}
        }
    }
    Ok(match compared {
        0 => "Not enough data: no previous snapshot to compare classes with.".into(),
        _ => format!(
            "Since the previous snapshot {} of {} customers moved to a worse class and {} to a \
             better one.",
            format::count(worse),
            format::count(compared),
            format::count(better)
        ),
    })
}
