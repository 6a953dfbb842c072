//! `arq score`: PD, points and reasons for every customer of the snapshot, or for every
//! row of a table with `--table`; the PSI against the training population on stderr.

use std::path::Path;
use std::sync::Arc;

use arq_models::sql::SessionModel;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::cli::args::ScoreArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::labelled::read_table;
use crate::scored::ScoredSnapshot;

/// Scores, writes or prints the rows, and reports the PSI.
pub fn run(config: &Config, args: &ScoreArgs) -> Result<()> {
    let model = &config.model()?.value;
    let (batch, psi) = config.block_on(async {
        match &args.table {
            Some(path) => score_table(model, path).await,
            None => {
                let snapshot =
                    ScoredSnapshot::checked(config.warehouse()?, model, config.feature_slice)
                        .await?;
                let psi = model.model.psi(&snapshot.scores.pd_below_late_stage());
                Ok((snapshot.scores.batch().clone(), psi))
            }
        }
    })?;
    let rows = batch.num_rows();
    config.output()?.write_batch(batch)?;
    eprintln!(
        "scored {rows} rows with {}; PSI against the training population {psi:.4} ({})",
        model.name,
        arq_models::metrics::psi_verdict(psi)
    );
    if args.table.is_none() {
        eprintln!("scores from {}", config.inputs_note());
    }
    Ok(())
}

/// Scores a table file with a model: its id columns, pd, score and three reasons.
async fn score_table(model: &SessionModel, path: &Path) -> Result<(RecordBatch, f64)> {
    let batch = read_table(path).await?;
    let indices = model
        .model
        .bind(&batch.schema(), &model.name)
        .map_err(|e| ArqError::Input(format!("{}: {e}", path.display())))?;
    let columns: Vec<ArrayRef> = indices.iter().map(|&i| batch.column(i).clone()).collect();
    let scored = model.model.score(&columns, 3)?;
    let psi = model.model.psi(&scored.pd);
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for id in &model.model.id_columns {
        if let Ok(i) = batch.schema().index_of(id) {
            fields.push(batch.schema().field(i).clone());
            arrays.push(batch.column(i).clone());
        }
    }
    fields.push(Field::new("pd", DataType::Float64, false));
    arrays.push(Arc::new(Float64Array::from(scored.pd)));
    fields.push(Field::new("score", DataType::Int32, false));
    arrays.push(Arc::new(Int32Array::from(scored.points)));
    for k in 0..3 {
        fields.push(Field::new(
            format!("reason_{}", k + 1),
            DataType::Utf8,
            true,
        ));
        arrays.push(Arc::new(StringArray::from(
            scored
                .reasons
                .iter()
                .map(|r| r.get(k).cloned())
                .collect::<Vec<_>>(),
        )));
    }
    Ok((
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?,
        psi,
    ))
}
