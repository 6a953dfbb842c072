//! What the nightly job reports: the manifest (inputs, versions, per-queue counts and
//! money, every output file, timings) and the summary printed at the end. Money is
//! added up only from the queues' rows, per queue.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Decimal128Type;
use rust_decimal::Decimal;
use serde::Serialize;

use super::changes::{Change, Changes};
use crate::error::{ArqError, Result};
use crate::output::fingerprint::FileFingerprint;
use crate::output::folder::OutputRecord;
use crate::storage::Location;
use futures::TryStreamExt;
use object_store::{GetResultPayload, ObjectMeta, ObjectStoreExt};
use std::io::Read;

/// What the run read.
pub struct InputFingerprint {
    pub files: usize,
    pub bytes: u64,
    pub fingerprint: String,
}

/// xxh3-64 over every warehouse file's path (relative to the warehouse) and bytes.
pub async fn fingerprint_files(root: &Location, files: &[ObjectMeta]) -> Result<InputFingerprint> {
    let mut sorted: Vec<(String, &ObjectMeta)> = files
        .iter()
        .map(|f| (root.relative(&f.location), f))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut fingerprint = FileFingerprint::default();
    let mut bytes = 0u64;
    for (relative, meta) in &sorted {
        fingerprint.update(relative.as_bytes());
        fingerprint.update(&[0]);
        let failed = |e| root.error(&meta.location, e);
        let got = root.store().get(&meta.location).await.map_err(failed)?;
        match got.payload {
            // A local file: read in large blocks off the async threads.
            GetResultPayload::File(mut file, path) => {
                let (hashed, n) = tokio::task::spawn_blocking(move || {
                    let mut buffer = vec![0u8; 1 << 20];
                    let (mut hashed, mut total) = (fingerprint, 0u64);
                    loop {
                        let n = file.read(&mut buffer).map_err(|e| ArqError::io(&path, e))?;
                        if n == 0 {
                            return Ok::<_, ArqError>((hashed, total));
                        }
                        hashed.update(&buffer[..n]);
                        total += n as u64;
                    }
                })
                .await
                .map_err(|e| ArqError::Internal(format!("fingerprinting failed: {e}")))??;
                fingerprint = hashed;
                bytes += n;
            }
            GetResultPayload::Stream(mut stream) => {
                while let Some(chunk) = stream.try_next().await.map_err(failed)? {
                    fingerprint.update(&chunk);
                    bytes += chunk.len() as u64;
                }
            }
        }
    }
    Ok(InputFingerprint {
        files: sorted.len(),
        bytes,
        fingerprint: fingerprint.hex(),
    })
}

/// The manifest of a night's outputs (`manifest.json`).
#[derive(Serialize)]
pub struct Manifest {
    pub arq_version: &'static str,
    pub as_of: String,
    pub warehouse: InputsRecord,
    pub model: ModelRecord,
    pub policy: PolicyRecord,
    pub customers: usize,
    pub eligible: usize,
    /// Overdue per currency (money in different currencies is never added up).
    pub overdue: BTreeMap<String, String>,
    pub queues: BTreeMap<String, QueueRecord>,
    pub limit_actions: BTreeMap<String, usize>,
    /// Where the previous snapshot's scores came from (the credit review's class
    /// migration): read from its committed night, or scored.
    pub previous_scores: &'static str,
    /// The previous committed night the changes are counted against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    /// Per queue and currency: new, resolved and rolled-worse accounts since then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<BTreeMap<String, BTreeMap<String, Change>>>,
    pub outputs: Vec<OutputRecord>,
    /// Wall time per stage: the only part that differs between two runs.
    pub timings_ms: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
pub struct InputsRecord {
    pub path: String,
    pub files: usize,
    pub bytes: u64,
    pub fingerprint: String,
}

#[derive(Serialize)]
pub struct ModelRecord {
    pub path: String,
    pub fingerprint: String,
    pub trained_on: String,
    pub train_from: Option<String>,
    pub train_to: Option<String>,
    pub training_fingerprint: String,
}

#[derive(Serialize)]
pub struct PolicyRecord {
    pub path: String,
    pub version: String,
    pub fingerprint: String,
}

/// A queue in the manifest: its accounts, and its money per currency.
#[derive(Serialize)]
pub struct QueueRecord {
    pub accounts: usize,
    /// Per currency (ISO code): accounts, overdue and expected loss.
    pub currencies: BTreeMap<String, MoneyRecord>,
}

/// Accounts and money in one currency.
#[derive(Serialize)]
pub struct MoneyRecord {
    pub accounts: usize,
    pub overdue: String,
    pub expected_loss: String,
}

/// Totals of one queue in one currency.
#[derive(Default)]
pub struct Totals {
    pub accounts: usize,
    pub overdue: Decimal,
    pub expected_loss: Decimal,
}

/// The numbers the summary and the manifest report; money per currency, never added
/// across currencies.
pub struct Summary {
    pub customers: usize,
    pub eligible: usize,
    /// Overdue per currency, over every queue.
    pub overdue: BTreeMap<String, Decimal>,
    /// Per queue, then per currency.
    pub queues: BTreeMap<String, BTreeMap<String, Totals>>,
    pub limit_actions: BTreeMap<String, usize>,
    /// Against the previous night, when there is one.
    pub changes: Option<Changes>,
}

/// What a run read, as its summary names it.
pub struct RunInputs<'a> {
    pub warehouse: &'a Location,
    pub model: &'a Path,
    pub policy: &'a Path,
    pub policy_version: &'a str,
}

impl Summary {
    pub fn of(scores: &RecordBatch, queues: &RecordBatch, limits: &RecordBatch) -> Result<Summary> {
        let column = |batch: &RecordBatch, name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| ArqError::Internal(format!("no column `{name}` in the outputs")))
        };
        let names = column(queues, "queue")?;
        let names = names.as_string::<i32>();
        let currencies = column(queues, "currency")?;
        let currencies = currencies.as_string::<i32>();
        let overdue = column(queues, "overdue")?;
        let overdue = overdue.as_primitive::<Decimal128Type>();
        let loss = column(queues, "expected_loss")?;
        let loss = loss.as_primitive::<Decimal128Type>();
        let money = |v: i128| Decimal::from_i128_with_scale(v, 2);
        let mut per_queue: BTreeMap<String, BTreeMap<String, Totals>> = BTreeMap::new();
        let mut total: BTreeMap<String, Decimal> = BTreeMap::new();
        for r in 0..queues.num_rows() {
            let currency = currencies.value(r);
            let q = per_queue
                .entry(names.value(r).to_string())
                .or_default()
                .entry(currency.to_string())
                .or_default();
            q.accounts += 1;
            q.overdue += money(overdue.value(r));
            q.expected_loss += money(loss.value(r));
            *total.entry(currency.to_string()).or_default() += money(overdue.value(r));
        }
        let actions = column(limits, "action")?;
        let actions = actions.as_string::<i32>();
        let mut limit_actions = BTreeMap::new();
        for a in actions.iter().flatten() {
            *limit_actions.entry(a.to_string()).or_insert(0) += 1;
        }
        Ok(Summary {
            customers: scores.num_rows(),
            eligible: queues.num_rows(),
            overdue: total,
            queues: per_queue,
            limit_actions,
            changes: None,
        })
    }

    /// The queues as the manifest lists them.
    pub fn queue_records(&self) -> BTreeMap<String, QueueRecord> {
        self.queues
            .iter()
            .map(|(name, currencies)| {
                let record = QueueRecord {
                    accounts: currencies.values().map(|t| t.accounts).sum(),
                    currencies: currencies
                        .iter()
                        .map(|(c, t)| {
                            let money = MoneyRecord {
                                accounts: t.accounts,
                                overdue: t.overdue.to_string(),
                                expected_loss: t.expected_loss.to_string(),
                            };
                            (c.clone(), money)
                        })
                        .collect(),
                };
                (name.clone(), record)
            })
            .collect()
    }

    /// The overdue per currency, as text.
    fn overdue_text(&self) -> String {
        let parts: Vec<String> = self
            .overdue
            .iter()
            .map(|(c, a)| format!("{c} {a}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// The summary; `settlement` is the line of the invoice settlement's update.
    pub fn text(
        &self,
        inputs: &RunInputs,
        target: &str,
        files: usize,
        seconds: f64,
        settlement: Option<&str>,
    ) -> String {
        let mut out = format!(
            "nightly {}: {} customers, {} with an overdue balance; overdue by currency: {}\n\
             warehouse {}, model {}, policy {} (version {})\n\n",
            target.rsplit('/').next().unwrap_or_default(),
            self.customers,
            self.eligible,
            self.overdue_text(),
            inputs.warehouse,
            inputs.model.display(),
            inputs.policy.display(),
            inputs.policy_version,
        );
        out.push_str(&format!(
            "{:<28} {:<8} {:>8} {:>18} {:>16}",
            "queue", "currency", "accounts", "overdue", "expected loss"
        ));
        match &self.changes {
            Some(_) => out.push_str(&format!(" {:>6} {:>9} {:>6}\n", "new", "resolved", "worse")),
            None => out.push('\n'),
        }
        // Every queue and currency of tonight, and those only the previous night had.
        let mut keys: Vec<(&String, &String)> = self
            .queues
            .iter()
            .flat_map(|(q, cs)| cs.keys().map(move |c| (q, c)))
            .collect();
        if let Some(changes) = &self.changes {
            keys.extend(
                changes
                    .queues
                    .iter()
                    .flat_map(|(q, cs)| cs.keys().map(move |c| (q, c))),
            );
        }
        keys.sort();
        keys.dedup();
        let none = Totals::default();
        for (name, currency) in keys {
            let q = self
                .queues
                .get(name)
                .and_then(|cs| cs.get(currency))
                .unwrap_or(&none);
            out.push_str(&format!(
                "{:<28} {:<8} {:>8} {:>18} {:>16}",
                name, currency, q.accounts, q.overdue, q.expected_loss
            ));
            match &self.changes {
                Some(changes) => {
                    let c = changes
                        .queues
                        .get(name)
                        .and_then(|cs| cs.get(currency))
                        .cloned()
                        .unwrap_or_default();
                    out.push_str(&format!(
                        " {:>6} {:>9} {:>6}\n",
                        c.new, c.resolved, c.rolled_worse
                    ));
                }
                None => out.push('\n'),
            }
        }
        match &self.changes {
            Some(c) => out.push_str(&format!(
                "(new, resolved and rolled into a worse aging bucket since the night of {})\n",
                c.since
            )),
            None => out.push_str("(no earlier night in the output folder to compare with)\n"),
        }
        let actions: Vec<String> = self
            .limit_actions
            .iter()
            .map(|(a, n)| format!("{n} {a}"))
            .collect();
        out.push_str(&format!("\ncredit limits: {}\n", actions.join(", ")));
        if let Some(line) = settlement {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!(
            "wrote {} files to {} in {seconds:.1} s\n",
            files, target
        ));
        out
    }
}
