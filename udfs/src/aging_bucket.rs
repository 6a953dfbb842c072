//! `aging_bucket(due_date, as_of [, bounds])`: the aging bucket label of an item.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt8Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::bounds::AgingBounds;
use crate::date_args::{Mapped, coerce_to_date, map_days};

#[user_doc(
    doc_section(label = "Receivables Functions"),
    description = "The aging bucket of an item at `as_of`. With the default bounds \
30,60,90,120 the buckets are `current` (not yet due: as_of <= due_date), `1-30`, `31-60`, \
`61-90`, `91-120` and `121+`. Custom bounds, strictly increasing positive whole days given \
as a string or an array literal, give `current`, `1-b1`, `(b1+1)-b2`, ..., `(bn+1)+`. Every \
item falls in exactly one bucket, so bucket totals add up to the open total. Sort buckets \
with `aging_bucket_rank`. Invalid bounds are a planning error.",
    syntax_example = "aging_bucket(due_date, as_of [, bounds])",
    sql_example = r#"```sql
> SELECT aging_bucket(DATE '2026-07-15', DATE '2026-10-31') AS bucket;
+--------+
| bucket |
+--------+
| 91-120 |
+--------+
> SELECT aging_bucket(due_date, snapshot_date, '15,45') AS bucket, sum(open_amount)
  FROM open_items_latest GROUP BY 1 ORDER BY aging_bucket_rank(bucket, '15,45');
```"#,
    argument(name = "due_date", description = "The item's due date."),
    argument(
        name = "as_of",
        description = "The date at which to age, usually `snapshot_date`."
    ),
    argument(
        name = "bounds",
        description = "Optional constant upper bounds of the overdue buckets in days: '15,45' or [15, 45]. Default '30,60,90,120'."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AgingBucket {
    signature: Signature,
}

impl Default for AgingBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl AgingBucket {
    /// The function: two date arguments and optional constant bounds.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Coerces `(due_date, as_of [, bounds])`: dates to Date32, bounds left as given.
pub(crate) fn coerce_dated_args(function: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    match arg_types {
        [due, as_of, rest @ ..] if rest.len() <= 1 => {
            let mut types = vec![
                coerce_to_date(function, 1, "due_date", due)?,
                coerce_to_date(function, 2, "as_of", as_of)?,
            ];
            types.extend(rest.iter().cloned());
            Ok(types)
        }
        _ => plan_err!(
            "{function} takes (due_date, as_of) or (due_date, as_of, bounds), got {} arguments",
            arg_types.len()
        ),
    }
}

/// Checks the bounds of a call while its return type is planned. `scalar` is None when
/// the argument is not a literal yet (an array literal is a `make_array` call until
/// constants are folded); such bounds are checked by [`check_bounds_expr`] in
/// `simplify`, which runs after folding and still before execution.
pub(crate) fn bounds_at_planning(
    function: &str,
    arg_count: usize,
    position: usize,
    scalar: Option<&ScalarValue>,
) -> Result<()> {
    match scalar {
        Some(v) if arg_count > position => AgingBounds::from_scalar(v)
            .map(|_| ())
            .or_else(|e| plan_err!("{function}: {}", planning_message(&e))),
        _ => Ok(()),
    }
}

/// Checks the bounds argument after constant folding: it must now be a literal.
pub(crate) fn check_bounds_expr(function: &str, args: &[Expr], position: usize) -> Result<()> {
    match args.get(position) {
        None => Ok(()),
        Some(Expr::Literal(v, _)) => bounds_at_planning(function, args.len(), position, Some(v)),
        Some(other) => plan_err!(
            "{function}: bounds must be a constant such as '30,60,90' or [30, 60, 90], got {other}"
        ),
    }
}

fn planning_message(e: &datafusion::error::DataFusionError) -> String {
    e.strip_backtrace()
        .trim_start_matches("Error during planning: ")
        .to_string()
}

/// The bounds at execution: always a scalar (planning checked it).
pub(crate) fn bounds_at_execution(
    function: &str,
    arg: Option<&ColumnarValue>,
) -> Result<AgingBounds> {
    match arg {
        None => Ok(AgingBounds::default()),
        Some(ColumnarValue::Scalar(v)) => AgingBounds::from_scalar(v),
        Some(ColumnarValue::Array(_)) => exec_err!("{function}: bounds must be a constant"),
    }
}

impl ScalarUDFImpl for AgingBucket {
    fn name(&self) -> &str {
        "aging_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_dated_args(self.name(), arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let scalar = args.scalar_arguments.get(2).copied().flatten();
        bounds_at_planning(self.name(), args.arg_fields.len(), 2, scalar)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        check_bounds_expr(self.name(), &args, 2)?;
        Ok(ExprSimplifyResult::Original(args))
    }

    /// `aging_bucket(due_date, DATE 'd') = 'b'` holds exactly when due_date lies in a
    /// range of dates, so the predicate becomes `due_date >= lo AND due_date < hi`, which
    /// Parquet row-group statistics can prune. Only for a constant as_of and bounds, a
    /// Date32 due_date, and buckets with a finite upper date (`current` has none).
    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        let (Some(due), Some(Expr::Literal(ScalarValue::Date32(Some(as_of)), _))) =
            (args.first(), args.get(1))
        else {
            return Ok(PreimageResult::None);
        };
        let Some(Some(label)) = lit_expr.as_literal().map(|v| v.try_as_str().flatten()) else {
            return Ok(PreimageResult::None);
        };
        let bounds = match args.get(2) {
            None => AgingBounds::default(),
            Some(Expr::Literal(v, _)) => match AgingBounds::from_scalar(v) {
                Ok(b) => b,
                Err(_) => return Ok(PreimageResult::None),
            },
            Some(_) => return Ok(PreimageResult::None),
        };
        if info.get_data_type(due)? != DataType::Date32 {
            return Ok(PreimageResult::None);
        }
        let Some(bucket) = bounds.rank_of(label) else {
            return Ok(PreimageResult::None);
        };
        // days past due in [low, high)  <=>  due_date in [as_of - high + 1, as_of - low + 1)
        let (low, high) = bounds.days_range(bucket);
        let (Some(low), Some(high)) = (low, high.or(Some(i32::MAX))) else {
            return Ok(PreimageResult::None);
        };
        let from = if high == i32::MAX {
            i32::MIN
        } else {
            as_of.saturating_sub(high - 1)
        };
        let to = as_of.saturating_sub(low - 1);
        let interval = Interval::try_new(
            ScalarValue::Date32(Some(from)),
            ScalarValue::Date32(Some(to)),
        )?;
        Ok(PreimageResult::Range {
            expr: due.clone(),
            interval: Box::new(interval),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bounds = bounds_at_execution(self.name(), args.args.get(2))?;
        let labels = bounds.labels();
        let buckets = map_days::<UInt8Type>(&args.args[0], &args.args[1], |days| {
            bounds.index(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32) as u8
        })?;
        Ok(match buckets {
            Mapped::Scalar(b) => {
                ColumnarValue::Scalar(ScalarValue::Utf8(b.map(|b| labels[b as usize].clone())))
            }
            Mapped::Array(indexes) => {
                let widest = labels.iter().map(String::len).max().unwrap_or(0);
                let mut out = StringBuilder::with_capacity(indexes.len(), indexes.len() * widest);
                if indexes.null_count() == 0 {
                    for b in indexes.values().iter() {
                        out.append_value(&labels[*b as usize]);
                    }
                } else {
                    for b in indexes.iter() {
                        out.append_option(b.map(|b| &labels[b as usize]));
                    }
                }
                ColumnarValue::Array(Arc::new(out.finish()))
            }
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Date32Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    async fn optimized_plan(sql: &str) -> String {
        let mut ctx = SessionContext::new();
        crate::register_all(&mut ctx).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "due_date",
            DataType::Date32,
            true,
        )]));
        let days: Date32Array = (20_000..20_800).map(Some).collect();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(days)]).unwrap();
        ctx.register_batch("items", batch).unwrap();
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        plan.display_indent().to_string()
    }

    async fn count(sql: &str) -> i64 {
        let mut ctx = SessionContext::new();
        crate::register_all(&mut ctx).unwrap();
        let days: Date32Array = (20_000..20_800).map(Some).chain([None]).collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "due_date",
            DataType::Date32,
            true,
        )]));
        ctx.register_batch(
            "items",
            RecordBatch::try_new(schema, vec![Arc::new(days)]).unwrap(),
        )
        .unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(
            batches[0].column(0),
        )
        .value(0)
    }

    #[tokio::test]
    async fn bucket_predicates_become_date_ranges() {
        // 2026-10-31 minus 120 days is 2026-07-03; minus 90 is 2026-08-02.
        let plan = optimized_plan(
            "SELECT * FROM items WHERE aging_bucket(due_date, DATE '2026-10-31') = '91-120'",
        )
        .await;
        assert!(
            plan.contains("due_date >= Date32(\"2026-07-03\")"),
            "{plan}"
        );
        assert!(plan.contains("due_date < Date32(\"2026-08-02\")"), "{plan}");
        assert!(!plan.contains("aging_bucket"), "{plan}");
        // `current` has no finite upper date: left as it is.
        let plan = optimized_plan(
            "SELECT * FROM items WHERE aging_bucket(due_date, DATE '2026-10-31') = 'current'",
        )
        .await;
        assert!(plan.contains("aging_bucket"), "{plan}");
    }

    #[tokio::test]
    async fn rewritten_predicates_select_the_same_rows() {
        for (bucket, bounds) in [
            ("'1-30'", ""),
            ("'91-120'", ""),
            ("'121+'", ""),
            ("'current'", ""),
            ("'16-45'", ", '15,45'"),
            ("'46+'", ", [15, 45]"),
            ("'nope'", ""),
        ] {
            for op in ["=", "<>"] {
                let call = format!("aging_bucket(due_date, DATE '2026-10-31'{bounds})");
                let rewritten = count(&format!(
                    "SELECT count(*) FROM items WHERE {call} {op} {bucket}"
                ))
                .await;
                // The same predicate where the optimizer cannot rewrite it (CASE around it).
                let plain = count(&format!(
                    "SELECT count(*) FROM items WHERE CASE WHEN true THEN {call} END {op} {bucket}"
                ))
                .await;
                assert_eq!(rewritten, plain, "{call} {op} {bucket}");
            }
        }
    }
}
