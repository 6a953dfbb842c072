//! `aging_bucket_rank(...)`: the position of an aging bucket (0 = `current`), so that
//! `ORDER BY` puts buckets in aging order.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::aging_bucket::{
    bounds_at_execution, bounds_at_planning, check_bounds_expr, coerce_dated_args,
};
use crate::bounds::AgingBounds;
use crate::date_args::{is_date_like, map_days};

#[user_doc(
    doc_section(label = "Receivables Functions"),
    description = "The order of an aging bucket: 0 for `current`, then 1, 2, ... up to the \
oldest bucket. Takes either a bucket label (as returned by `aging_bucket`) or the same \
arguments as `aging_bucket`. Pass the same bounds as to `aging_bucket` when they are not \
the default; a label that is not a bucket of the bounds is an error.",
    syntax_example = "aging_bucket_rank(bucket [, bounds]) | aging_bucket_rank(due_date, as_of [, bounds])",
    sql_example = r#"```sql
> SELECT aging_bucket_rank('91-120') AS r1, aging_bucket_rank('46+', '15,45') AS r2;
+----+----+
| r1 | r2 |
+----+----+
| 4  | 3  |
+----+----+
> SELECT aging_bucket(due_date, snapshot_date) AS bucket, sum(open_amount) AS open
  FROM open_items_latest GROUP BY bucket ORDER BY aging_bucket_rank(bucket);
```"#,
    argument(
        name = "bucket",
        description = "A bucket label such as `current` or `31-60`."
    ),
    argument(name = "due_date", description = "The item's due date (date form)."),
    argument(name = "as_of", description = "The date at which to age (date form)."),
    argument(
        name = "bounds",
        description = "Optional constant bounds, as for `aging_bucket`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AgingBucketRank {
    signature: Signature,
}

impl Default for AgingBucketRank {
    fn default() -> Self {
        Self::new()
    }
}

impl AgingBucketRank {
    /// The function, in its label form and its date form.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

/// Label form: one argument, or two whose second is not a date (it is the bounds).
fn is_label_form(arg_types: &[DataType]) -> bool {
    match arg_types {
        [label] => is_string(label),
        [label, second] => {
            is_string(label)
                && (matches!(second, DataType::List(_) | DataType::LargeList(_))
                    || (is_string(second) && !matches!(second, DataType::Null)))
                && !matches!(
                    second,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
                )
        }
        _ => false,
    }
}

impl ScalarUDFImpl for AgingBucketRank {
    fn name(&self) -> &str {
        "aging_bucket_rank"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if is_label_form(arg_types) {
            let mut types = vec![DataType::Utf8];
            types.extend(arg_types.iter().skip(1).cloned());
            return Ok(types);
        }
        if arg_types.len() >= 2 && is_date_like(&arg_types[0]) {
            return coerce_dated_args(self.name(), arg_types);
        }
        plan_err!(
            "{} takes (bucket [, bounds]) or (due_date, as_of [, bounds]), got ({})",
            self.name(),
            arg_types
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let position = if is_label_form(&types) { 1 } else { 2 };
        let scalar = args.scalar_arguments.get(position).copied().flatten();
        bounds_at_planning(self.name(), types.len(), position, scalar)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Int32, true)))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let types = args
            .iter()
            .map(|a| info.get_data_type(a))
            .collect::<Result<Vec<_>>>()?;
        let position = if is_label_form(&types) { 1 } else { 2 };
        check_bounds_expr(self.name(), &args, position)?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let label_form = args.args.len() == 1
            || args.args.len() == 2 && !matches!(args.args[1].data_type(), DataType::Date32);
        if !label_form {
            let bounds = bounds_at_execution(self.name(), args.args.get(2))?;
            let ranks = map_days::<Int32Type>(&args.args[0], &args.args[1], |days| {
                bounds.index(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32) as i32
            })?;
            return Ok(ranks.into_columnar(ScalarValue::Int32));
        }
        let bounds = bounds_at_execution(self.name(), args.args.get(1))?;
        let rank = |label: &str| -> Result<i32> {
            match bounds.rank_of(label) {
                Some(r) => Ok(r as i32),
                None => unknown_label(self.name(), label, &bounds),
            }
        };
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(label)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Int32(label.as_deref().map(rank).transpose()?),
            )),
            ColumnarValue::Scalar(ScalarValue::Null) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)))
            }
            ColumnarValue::Array(labels) if labels.data_type() == &DataType::Utf8 => {
                let labels = labels.as_string::<i32>();
                let ranks: Int32Array = labels
                    .iter()
                    .map(|l| l.map(rank).transpose())
                    .collect::<Result<_>>()?;
                Ok(ColumnarValue::Array(Arc::new(ranks)))
            }
            other => exec_err!(
                "{}: expected a Utf8 bucket label, got {}",
                self.name(),
                other.data_type()
            ),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

fn unknown_label<T>(function: &str, label: &str, bounds: &AgingBounds) -> Result<T> {
    exec_err!(
        "{function}: `{label}` is not an aging bucket of bounds {bounds} (buckets: {})",
        bounds.labels().join(", ")
    )
}
