//! A scored snapshot: a session over the warehouse and every customer's scores at the
//! warehouse's snapshot — what `arq score`, `arq queue`, `arq limits` and the nightly job
//! all start from, computed once per run.

use arq_models::Policy;
use arq_models::scores::{Scores, score_snapshot, score_snapshots};
use arq_models::sql::SessionModel;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::execution::SessionState;

use crate::error::Result;
use crate::warehouse::Warehouse;

/// The session state and the scores of the warehouse's snapshot.
pub struct ScoredSnapshot {
    pub state: SessionState,
    pub scores: Scores,
}

impl ScoredSnapshot {
    /// Checks the snapshot's rows ([`crate::validate::snapshot`]), then scores it: what
    /// every command that writes decisions does.
    pub async fn checked(
        warehouse: &Warehouse,
        model: &SessionModel,
        slice: usize,
    ) -> Result<ScoredSnapshot> {
        crate::validate::snapshot(warehouse).await?;
        Self::load(warehouse, model, slice).await
    }

    /// Scores every customer of the warehouse's snapshot, `slice` customers per feature
    /// query.
    pub async fn load(
        warehouse: &Warehouse,
        model: &SessionModel,
        slice: usize,
    ) -> Result<ScoredSnapshot> {
        let state = warehouse.local_session(Some(model)).await?.state();
        let day = warehouse.as_of_day();
        let features = features_state(warehouse, &state).await?;
        let scores = score_snapshot(&features, &model.model, &model.name, day, slice).await?;
        Ok(ScoredSnapshot { state, scores })
    }

    /// [`ScoredSnapshot::load`] and the scores of the complete snapshot before it (`None`
    /// when this is the first), scored with it (`arq_models::scores::score_snapshots`):
    /// what the credit review's class migration needs.
    pub async fn load_with_previous(
        warehouse: &Warehouse,
        model: &SessionModel,
        slice: usize,
    ) -> Result<(ScoredSnapshot, Option<Scores>)> {
        let day = warehouse.as_of_day();
        let Some(previous) = warehouse.previous_snapshot().map(arq_udfs::dates::to_days) else {
            return Ok((Self::load(warehouse, model, slice).await?, None));
        };
        let state = warehouse.local_session(Some(model)).await?.state();
        let features = features_state(warehouse, &state).await?;
        let both = score_snapshots(
            &features,
            &model.model,
            &model.name,
            &[previous, day],
            slice,
        )
        .await?;
        let [previous, scores]: [Scores; 2] = both.try_into().map_err(|_| {
            crate::ArqError::Internal("two snapshots scored, not two score tables".into())
        })?;
        Ok((ScoredSnapshot { state, scores }, Some(previous)))
    }
}

/// The session the features are computed in: the cluster's when the warehouse has one
/// (`--cluster`: every slice's feature query runs there), else `local`. Scoring and what
/// follows stay in `local`.
async fn features_state(warehouse: &Warehouse, local: &SessionState) -> Result<SessionState> {
    match warehouse.cluster() {
        None => Ok(local.clone()),
        Some(url) => {
            let ctx = datafusion::prelude::SessionContext::new_with_state(local.clone());
            Ok(crate::cluster::client::connect(ctx, url).await?.state())
        }
    }
}

/// The rows whose text column `column` equals `value` (NULL equals nothing), maybe none.
pub fn rows_where(batch: &RecordBatch, column: &str, value: &str) -> Result<RecordBatch> {
    let Some(ids) = batch.column_by_name(column) else {
        return Err(crate::ArqError::Internal(format!("no column `{column}`")));
    };
    let ids = ids.as_string::<i32>();
    let rows: Vec<u32> = (0..ids.len())
        .filter(|&r| ids.is_valid(r) && ids.value(r) == value)
        .map(|r| r as u32)
        .collect();
    take_rows(batch, &rows)
}

/// The given rows of a batch, in the given order.
pub fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    let take = UInt32Array::from(rows.to_vec());
    let columns = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::take(c, &take, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// The snapshot's credit-limit recommendations under `policy` (`arq limits`' rows): the
/// snapshot scored and checked, the previous one scored for the class migration.
pub async fn recommendations(
    warehouse: &Warehouse,
    model: &SessionModel,
    feature_slice: usize,
    policy: &Policy,
) -> Result<RecordBatch> {
    crate::validate::snapshot(warehouse).await?;
    let (snapshot, previous) =
        ScoredSnapshot::load_with_previous(warehouse, model, feature_slice).await?;
    let limits = arq_models::limits::recommend_snapshot(
        &snapshot.state,
        &snapshot.scores,
        previous.as_ref(),
        policy,
    )
    .await?;
    Ok(limits)
}
