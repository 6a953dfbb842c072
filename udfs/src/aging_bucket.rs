//! `aging_bucket(due_date, as_of [, bounds])`: the aging bucket label of an item.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt8Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::bounds::AgingBounds;
use crate::dates::{Mapped, coerce_to_date, map_days};

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
