//! `arq limits --applications FILE.csv`: credit applications of prospective customers,
//! read from CSV and decided under the policy's `[applications]` table
//! ([`arq_models::applications`]).
//!
//! Columns (a header row, any order): `application_id`, `name`, `segment`, `region`,
//! `currency`, `requested_limit` (decimal), and optionally `external_rating` (whole
//! number) and `annual_revenue` (decimal); empty optional cells are missing values. A bad
//! cell is an error naming the file, row and column.

use std::path::Path;
use std::sync::Arc;

use arq_models::Policy;
use arq_models::applications::Application;
use arq_models::money::{self, MONEY};
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{ArqError, Result};

const REQUIRED: [&str; 6] = [
    "application_id",
    "name",
    "segment",
    "region",
    "currency",
    "requested_limit",
];

/// The columns of the decisions.
pub fn decisions_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("application_id"),
        text("name"),
        text("segment"),
        text("region"),
        text("currency"),
        Field::new("requested_limit", MONEY, false),
        Field::new("external_rating", DataType::Int32, true),
        Field::new("annual_revenue", MONEY, true),
        Field::new("pd", DataType::Float64, false),
        text("risk_class"),
        text("decision"),
        Field::new("limit", MONEY, false),
        text("reasons"),
        text("policy_version"),
    ]))
}

/// Reads the applications of `file` and decides each under `policy`.
pub fn decide(file: &Path, policy: &Policy) -> Result<RecordBatch> {
    let applications = read(file)?;
    let input = |message: String| ArqError::Input(format!("{}: {message}", file.display()));
    let mut decisions = Vec::with_capacity(applications.len());
    for (row, a) in &applications {
        let d = policy
            .limits
            .decide_application(a)
            .map_err(|e| input(format!("row {row}: {e}")))?;
        decisions.push(d);
    }
    let cents = |what: &str, v: Option<Decimal>, row: usize| -> Result<Option<i128>> {
        v.map(|v| money::to_cents(v, || format!("{what} of row {row}")))
            .transpose()
            .map_err(|e| input(e.to_string()))
    };
    let n = applications.len();
    let mut requested = Vec::with_capacity(n);
    let mut revenue = Vec::with_capacity(n);
    let mut limit = Vec::with_capacity(n);
    for ((row, a), d) in applications.iter().zip(&decisions) {
        requested.push(cents("requested_limit", Some(a.requested_limit), *row)?);
        revenue.push(cents("annual_revenue", a.annual_revenue, *row)?);
        limit.push(cents("limit", Some(d.limit), *row)?);
    }
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from((0..n).map(f).collect::<Vec<_>>()))
    };
    let money_array = |v: Vec<Option<i128>>| -> ArrayRef {
        Arc::new(Decimal128Array::from(v).with_data_type(MONEY))
    };
    let a = |i: usize| &applications[i].1;
    Ok(RecordBatch::try_new(
        decisions_schema(),
        vec![
            text(&|i| a(i).application_id.clone()),
            text(&|i| a(i).name.clone()),
            text(&|i| a(i).segment.clone()),
            text(&|i| a(i).region.clone()),
            text(&|i| a(i).currency.clone()),
            money_array(requested),
            Arc::new(Int32Array::from(
                (0..n)
                    .map(|i| a(i).external_rating.map(|r| r as i32))
                    .collect::<Vec<_>>(),
            )),
            money_array(revenue),
            Arc::new(Float64Array::from(
                decisions
                    .iter()
                    .map(|d| d.pd.to_f64().unwrap_or(1.0))
                    .collect::<Vec<_>>(),
            )),
            text(&|i| decisions[i].risk_class.clone()),
            text(&|i| decisions[i].decision.to_string()),
            money_array(limit),
            text(&|i| decisions[i].reasons.join("; ")),
            text(&|_| policy.version.clone()),
        ],
    )?)
}

/// The applications of a CSV file with their row numbers (1 = the first after the header).
fn read(file: &Path) -> Result<Vec<(usize, Application)>> {
    let input = |message: String| ArqError::Input(format!("{}: {message}", file.display()));
    let mut reader = csv::Reader::from_path(file).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(_) => input(format!("cannot read: {e}")),
        _ => input(e.to_string()),
    })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| input(format!("no header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let index = |name: &str| header.iter().position(|h| h == name);
    if let Some(missing) = REQUIRED.iter().find(|c| index(c).is_none()) {
        return Err(input(format!(
            "column `{missing}` is missing (the header has {}; needed: {}, optional: external_rating, annual_revenue)",
            header.join(", "),
            REQUIRED.join(", ")
        )));
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = record.map_err(|e| input(format!("row {row}: {e}")))?;
        let cell = |name: &str| {
            index(name)
                .and_then(|j| record.get(j))
                .map(str::trim)
                .unwrap_or("")
        };
        let at = |name: &str, message: &str| input(format!("row {row}, column {name}: {message}"));
        let required = |name: &str| -> Result<String> {
            let v = cell(name);
            if v.is_empty() {
                return Err(at(name, "empty"));
            }
            Ok(v.to_string())
        };
        let decimal = |name: &str, v: &str| -> Result<Decimal> {
            let d = Decimal::from_str_exact(v)
                .map_err(|_| at(name, &format!("`{v}` is not a decimal amount")))?;
            if d.is_sign_negative() {
                return Err(at(name, &format!("{d} is negative")));
            }
            Ok(d)
        };
        let id = required("application_id")?;
        if !seen.insert(id.clone()) {
            return Err(at("application_id", &format!("{id} appears twice")));
        }
        let requested = decimal("requested_limit", &required("requested_limit")?)?;
        let rating = match cell("external_rating") {
            "" => None,
            v => Some(
                v.parse::<u32>()
                    .map_err(|_| at("external_rating", &format!("`{v}` is not a whole number")))?,
            ),
        };
        let revenue = match cell("annual_revenue") {
            "" => None,
            v => Some(decimal("annual_revenue", v)?),
        };
        out.push((
            row,
            Application {
                application_id: id,
                name: required("name")?,
                segment: required("segment")?,
                region: required("region")?,
                currency: required("currency")?,
                requested_limit: requested,
                external_rating: rating,
                annual_revenue: revenue,
            },
        ));
    }
    Ok(out)
}
