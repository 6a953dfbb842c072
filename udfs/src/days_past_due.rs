//! `days_past_due(due_date, as_of)`: whole days an item is overdue, never negative.

use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::common::utils::take_function_args;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::date_args::{coerce_to_date, map_days};

#[user_doc(
    doc_section(label = "Receivables Functions"),
    description = "Days past due of an item at `as_of`: `max(as_of - due_date, 0)`. \
An item due today or later is 0 days past due. Dates, timestamps (their date part) and \
'YYYY-MM-DD' strings are accepted; NULL in either argument gives NULL.",
    syntax_example = "days_past_due(due_date, as_of)",
    sql_example = r#"```sql
> SELECT days_past_due(DATE '2026-09-30', DATE '2026-10-31');
+------------------------------------------------------------------+
| days_past_due(Date32("2026-09-30"),Date32("2026-10-31"))         |
+------------------------------------------------------------------+
| 31                                                               |
+------------------------------------------------------------------+
> SELECT invoice_id, days_past_due(due_date, snapshot_date) AS dpd FROM open_items_latest;
```"#,
    argument(name = "due_date", description = "The item's due date."),
    argument(
        name = "as_of",
        description = "The date at which to measure, usually `snapshot_date`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DaysPastDue {
    signature: Signature,
}

impl Default for DaysPastDue {
    fn default() -> Self {
        Self::new()
    }
}

impl DaysPastDue {
    /// The function, with a user-defined signature that coerces both arguments to dates.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DaysPastDue {
    fn name(&self) -> &str {
        "days_past_due"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [due, as_of] = take_function_args(self.name(), arg_types)?;
        Ok(vec![
            coerce_to_date(self.name(), 1, "due_date", due)?,
            coerce_to_date(self.name(), 2, "as_of", as_of)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [due, as_of] = take_function_args(self.name(), &args.args)?;
        let mapped =
            map_days::<Int32Type>(due, as_of, |days| days.clamp(0, i32::MAX as i64) as i32)?;
        Ok(mapped.into_columnar(ScalarValue::Int32))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}
