//! `date_trunc` with a faster path for the calendar granularities analysts group by.
//!
//! DataFusion's `date_trunc('month', x)` (and `week`, `quarter`, `year`) builds a chrono
//! date-time for every row and reassembles it, and `CAST(date_trunc('month', d) AS DATE)`
//! of a date — how analysts write "the month of" — adds two casts, the one back to a
//! date again through chrono: at 1 M customers over the 132 M invoices that was 40 % of
//! the DSO trend's CPU. Months, quarters and years are plain day arithmetic (H. Hinnant's
//! civil-from-days algorithm, looked up in a table of the batch's span of days), so:
//!
//! - [`DateTrunc`] computes the calendar granularities of timestamps without a time zone
//!   directly and hands every other case — a time zone, a finer granularity (DataFusion
//!   already does those by arithmetic), times, values whose truncation leaves the
//!   nanosecond range DataFusion checks — to the built-in. It *replaces* the built-in
//!   under the same name, signature and return type, and gives the same value (or the
//!   same error) for every input: a property test compares the two over the whole range
//!   of each time unit. It is registered by [`crate::register_all`] and is not one of
//!   this crate's own functions ([`crate::scalar_functions`]).
//! - [`DatesTruncatedAsDates`], an analyzer rule, turns `CAST(date_trunc(g, CAST(d AS
//!   TIMESTAMP)) AS DATE)` of a `DATE` `d` and a day, week, month, quarter or year `g`
//!   into [`DateTruncToDate`] of the date itself, a date: no casts, same value. A date whose
//!   truncation the casts could not represent (outside 1677–2262) goes through them, as
//!   before, and fails as before.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, PrimitiveArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, FieldRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

/// The granularities computed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calendar {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Calendar {
    fn parse(granularity: &ColumnarValue) -> Option<Self> {
        match granularity {
            ColumnarValue::Scalar(scalar) => Self::of_literal(scalar),
            ColumnarValue::Array(_) => None,
        }
    }

    fn of_literal(granularity: &ScalarValue) -> Option<Self> {
        let text = match granularity {
            ScalarValue::Utf8(Some(v))
            | ScalarValue::Utf8View(Some(v))
            | ScalarValue::LargeUtf8(Some(v)) => v,
            _ => return None,
        };
        match text.to_lowercase().as_str() {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "quarter" => Some(Self::Quarter),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// `date_trunc`, DataFusion's built-in with the calendar granularities of timestamps
/// computed faster.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateTrunc {
    builtin: Arc<ScalarUDF>,
}

impl Default for DateTrunc {
    fn default() -> Self {
        Self::new()
    }
}

impl DateTrunc {
    /// Wraps DataFusion's `date_trunc`.
    pub fn new() -> Self {
        Self {
            builtin: datafusion::functions::datetime::date_trunc(),
        }
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        self.builtin.name()
    }

    fn aliases(&self) -> &[String] {
        self.builtin.aliases()
    }

    fn signature(&self) -> &Signature {
        self.builtin.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.builtin.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.builtin.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [granularity, ColumnarValue::Array(values)] = args.args.as_slice()
            && let Some(calendar) = Calendar::parse(granularity)
            && calendar != Calendar::Day
            && let Some(truncated) = truncate_timestamps(values, calendar)
        {
            return Ok(ColumnarValue::Array(truncated));
        }
        self.builtin.invoke_with_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.builtin.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.builtin.documentation()
    }
}

/// `date_trunc` of a `DATE` to a `DATE`: what [`DatesTruncatedAsDates`] writes for
/// `CAST(date_trunc(g, CAST(d AS TIMESTAMP)) AS DATE)`. Not registered under its name: the
/// rule puts it in the plan (as the planner puts a registered function there).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateTruncToDate {
    builtin: Arc<ScalarUDF>,
    signature: Signature,
}

impl Default for DateTruncToDate {
    fn default() -> Self {
        Self::new()
    }
}

impl DateTruncToDate {
    /// The function, falling back to DataFusion's `date_trunc` through timestamps.
    pub fn new() -> Self {
        let exact = |text: DataType| TypeSignature::Exact(vec![text, DataType::Date32]);
        Self {
            builtin: datafusion::functions::datetime::date_trunc(),
            signature: Signature::one_of(
                vec![
                    exact(DataType::Utf8),
                    exact(DataType::Utf8View),
                    exact(DataType::LargeUtf8),
                ],
                Volatility::Immutable,
            ),
        }
    }

    /// A date array truncated as the built-in truncates it cast to a timestamp, cast back.
    fn dates(&self, args: &ScalarFunctionArgs, dates: &ArrayRef) -> Result<ArrayRef> {
        let calendar = Calendar::parse(&args.args[0]);
        if let Some(truncated) = calendar.and_then(|c| truncate_dates(dates, c)) {
            return Ok(truncated);
        }
        // Through the timestamps, as the plan did before the rule: the same value or
        // the same failure.
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let timestamp = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let timestamps = cast_with_options(dates, &timestamp, &strict)?;
        let field = |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(timestamp.clone()));
        let through = ScalarFunctionArgs {
            args: vec![args.args[0].clone(), ColumnarValue::Array(timestamps)],
            arg_fields: vec![Arc::clone(&args.arg_fields[0]), field(&args.arg_fields[1])],
            number_rows: args.number_rows,
            return_field: field(&args.return_field),
            config_options: Arc::clone(&args.config_options),
        };
        let truncated = self
            .builtin
            .invoke_with_args(through)?
            .into_array(args.number_rows)?;
        Ok(cast_with_options(&truncated, &DataType::Date32, &strict)?)
    }
}

impl ScalarUDFImpl for DateTruncToDate {
    fn name(&self) -> &str {
        "date_trunc_to_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[1] {
            ColumnarValue::Array(dates) => Ok(ColumnarValue::Array(self.dates(&args, dates)?)),
            ColumnarValue::Scalar(date) => {
                let truncated = self.dates(&args, &date.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &truncated, 0,
                )?))
            }
        }
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.builtin.output_ordering(input)
    }
}

/// The analyzer rule of the module's notes: `CAST(date_trunc(g, CAST(d AS
/// TIMESTAMP)) AS DATE)` → `date_trunc_to_date(g, d)` for a `DATE` `d` and a literal day, week,
/// month, quarter or year `g`, the expression keeping its name.
#[derive(Debug)]
pub struct DatesTruncatedAsDates {
    to_date: Arc<ScalarUDF>,
}

impl Default for DatesTruncatedAsDates {
    fn default() -> Self {
        Self::new()
    }
}

impl DatesTruncatedAsDates {
    /// The rule's name.
    pub const NAME: &str = "arq_dates_truncated_as_dates";

    /// The rule.
    pub fn new() -> Self {
        Self {
            to_date: Arc::new(ScalarUDF::new_from_impl(DateTruncToDate::new())),
        }
    }

    /// The date `d` of `CAST(date_trunc(g, CAST(d AS TIMESTAMP)) AS DATE)`, and `g`.
    fn date_of<'a>(
        expr: &'a Expr,
        schema: &datafusion::common::DFSchema,
    ) -> Option<(&'a Expr, &'a Expr)> {
        let Expr::Cast(Cast { expr, field }) = expr else {
            return None;
        };
        let Expr::ScalarFunction(ScalarFunction { func, args }) = expr.as_ref() else {
            return None;
        };
        if field.data_type() != &DataType::Date32 || func.name() != "date_trunc" {
            return None;
        }
        let [
            granularity @ Expr::Literal(g, _),
            Expr::Cast(Cast {
                expr: date,
                field: to,
            }),
        ] = args.as_slice()
        else {
            return None;
        };
        let is_date = date.get_type(schema).ok()? == DataType::Date32;
        (Calendar::of_literal(g).is_some()
            && is_date
            && to.data_type() == &DataType::Timestamp(TimeUnit::Nanosecond, None))
            .then_some((date.as_ref(), granularity))
    }

    /// One node's expressions rewritten.
    fn rewrite(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        if plan.inputs().is_empty() {
            return Ok(Transformed::no(plan));
        }
        let schema = merge_schema(&plan.inputs());
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| {
                Ok(match Self::date_of(&e, &schema) {
                    Some((date, granularity)) => {
                        Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                            Arc::clone(&self.to_date),
                            vec![granularity.clone(), date.clone()],
                        )))
                    }
                    None => Transformed::no(e),
                })
            })?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    }
}

/// An analyzer rule, so that it runs after the type coercion that writes the casts and
/// before the optimizer (whose common subexpressions would pull a shared `CAST(d AS
/// TIMESTAMP)` out of sight).
impl AnalyzerRule for DatesTruncatedAsDates {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| self.rewrite(node))?
            .data)
    }

    fn name(&self) -> &str {
        Self::NAME
    }
}

/// Start days of the days of one batch: a table over the batch's span when it is short
/// (a batch of invoices spans a year or two), the arithmetic otherwise.
struct Starts {
    low: i64,
    table: Vec<i64>,
    calendar: Calendar,
}

impl Starts {
    /// Spans up to this many days are tabled (512 KB).
    const TABLED: i64 = 65_536;

    fn new(low: i64, high: i64, calendar: Calendar) -> Self {
        let table = if high >= low && high - low < Self::TABLED {
            (low..=high).map(|day| start_day(day, calendar)).collect()
        } else {
            Vec::new()
        };
        Self {
            low,
            table,
            calendar,
        }
    }

    #[inline]
    fn of(&self, day: i64) -> i64 {
        match self.table.get(day.wrapping_sub(self.low) as usize) {
            Some(start) => *start,
            None => start_day(day, self.calendar),
        }
    }
}

/// Nanosecond timestamps reach this many days either side of 1970-01-01.
const NANOSECOND_DAYS: i64 = i64::MAX / 86_400_000_000_000;

/// The truncated dates, or `None` when a date or its truncation is outside what the
/// timestamps of the original plan represent (there the casts report it).
fn truncate_dates(values: &ArrayRef, calendar: Calendar) -> Option<ArrayRef> {
    let dates: &Date32Array = values.as_primitive();
    let low = datafusion::arrow::compute::min(dates).unwrap_or(0) as i64;
    let high = datafusion::arrow::compute::max(dates).unwrap_or(0) as i64;
    let starts = Starts::new(low, high, calendar);
    let in_range = |day: i64| (-NANOSECOND_DAYS..=NANOSECOND_DAYS).contains(&day);
    let truncated: PrimitiveArray<Date32Type> = dates
        .try_unary(|day| {
            let start = starts.of(day as i64);
            if in_range(day as i64) && in_range(start) {
                Ok(start as i32)
            } else {
                Err(())
            }
        })
        .ok()?;
    Some(Arc::new(truncated))
}

/// The truncated array, or `None` when the built-in must answer (a time zone, another
/// type, or a value out of the built-in's range, where it reports the error).
fn truncate_timestamps(values: &ArrayRef, calendar: Calendar) -> Option<ArrayRef> {
    match values.data_type() {
        DataType::Timestamp(TimeUnit::Second, None) => {
            truncate::<TimestampSecondType>(values, calendar)
        }
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            truncate::<TimestampMillisecondType>(values, calendar)
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            truncate::<TimestampMicrosecondType>(values, calendar)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, None) => {
            truncate::<TimestampNanosecondType>(values, calendar)
        }
        _ => None,
    }
}

fn truncate<T: ArrowTimestampType>(values: &ArrayRef, calendar: Calendar) -> Option<ArrayRef> {
    // Nanoseconds in one unit.
    let nanos_per_unit: i64 = match T::UNIT {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    let per_day = 86_400_000_000_000 / nanos_per_unit;
    let array: &PrimitiveArray<T> = values.as_primitive();
    let low = datafusion::arrow::compute::min(array).unwrap_or(0);
    let high = datafusion::arrow::compute::max(array).unwrap_or(0);
    let starts = Starts::new(low.div_euclid(per_day), high.div_euclid(per_day), calendar);
    let truncated: PrimitiveArray<T> = array
        .try_unary(|value| {
            // The built-in works in nanoseconds: a value or a result outside them is its
            // error to report.
            value.checked_mul(nanos_per_unit).ok_or(())?;
            let start = starts
                .of(value.div_euclid(per_day))
                .checked_mul(per_day)
                .ok_or(())?;
            start.checked_mul(nanos_per_unit).ok_or(())?;
            Ok::<i64, ()>(start)
        })
        .ok()?;
    Some(Arc::new(truncated))
}

/// The first day (days since 1970-01-01) of the week (from Monday), month, quarter or
/// year holding `day`.
fn start_day(day: i64, calendar: Calendar) -> i64 {
    match calendar {
        Calendar::Day => day,
        // 1970-01-01 was a Thursday: three days after a Monday.
        Calendar::Week => day - (day + 3).rem_euclid(7),
        Calendar::Month => {
            let (_, _, d) = civil_from_days(day);
            day - (d - 1)
        }
        Calendar::Quarter => {
            let (y, m, _) = civil_from_days(day);
            days_from_civil(y, (m - 1) / 3 * 3 + 1, 1)
        }
        Calendar::Year => {
            let (y, _, _) = civil_from_days(day);
            days_from_civil(y, 1, 1)
        }
    }
}

/// Year, month (1–12) and day (1–31) of a day number, proleptic Gregorian.
fn civil_from_days(day: i64) -> (i64, i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a calendar date, proleptic Gregorian.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::Field;
    use proptest::prelude::*;

    #[test]
    fn the_calendar_agrees_with_chrono() {
        for day in -800_000i64..800_000 {
            let date = crate::dates::from_days(day as i32).unwrap();
            let (y, m, d) = civil_from_days(day);
            use chrono::Datelike;
            assert_eq!(
                (y, m, d),
                (date.year() as i64, date.month() as i64, date.day() as i64)
            );
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    /// Calls `function` as the engine would: `date_trunc(granularity, values)`.
    fn call(function: &dyn ScalarUDFImpl, granularity: &str, values: ArrayRef) -> Result<ArrayRef> {
        let rows = values.len();
        let arg_fields = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("v", values.data_type().clone(), true)),
        ];
        let return_field = Field::new("date_trunc", values.data_type().clone(), true);
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.to_string()))),
                ColumnarValue::Array(values),
            ],
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(return_field),
            config_options: Arc::new(ConfigOptions::default()),
        };
        function.invoke_with_args(args)?.into_array(rows)
    }

    /// Values of one unit: mostly in the nanosecond range (where the built-in answers),
    /// some anywhere in i64 (where it reports an error), the range's edges, NULLs.
    fn any_values() -> impl Strategy<Value = Vec<Option<i64>>> {
        proptest::collection::vec(
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(i64::MIN)),
                1 => Just(Some(i64::MAX)),
                1 => Just(Some(0)),
                6 => (-9_223_372_036i64..9_223_372_036).prop_map(Some),
                2 => any::<i64>().prop_map(Some),
            ],
            0..40,
        )
    }

    fn arrays(values: &[Option<i64>]) -> Vec<ArrayRef> {
        // Seconds scaled down so that most fall in the built-in's range in every unit.
        let scaled = |f: i64| values.iter().map(|v| v.map(|v| v / f)).collect::<Vec<_>>();
        vec![
            Arc::new(TimestampSecondArray::from(scaled(1))),
            Arc::new(TimestampMillisecondArray::from(scaled(1)).with_timezone_opt(None::<&str>)),
            Arc::new(TimestampMillisecondArray::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v.wrapping_mul(1_000)))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMicrosecondArray::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v.wrapping_mul(1_000_000)))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(TimestampNanosecondArray::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v.wrapping_mul(1_000_000_000)))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(TimestampNanosecondArray::from(values.to_vec())),
            Arc::new(
                TimestampNanosecondArray::from(values.to_vec()).with_timezone("Europe/Berlin"),
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(17),
            ..ProptestConfig::default()
        })]

        #[test]
        fn every_value_truncates_as_the_builtin_does(values in any_values()) {
            let ours = DateTrunc::new();
            let builtin = datafusion::functions::datetime::date_trunc();
            // (Finer granularities go to the built-in untouched — and its own arithmetic
            // for them overflows on i64::MIN in a debug build: not tried here.)
            for granularity in ["week", "month", "quarter", "year", "MONTH", "Quarter"] {
                for array in arrays(&values) {
                    let expected = call(builtin.inner().as_ref(), granularity, Arc::clone(&array));
                    let got = call(&ours, granularity, Arc::clone(&array));
                    match (expected, got) {
                        (Ok(e), Ok(g)) => prop_assert_eq!(
                            e.to_data(), g.to_data(), "{} of {:?}", granularity, array
                        ),
                        (Err(e), Err(g)) => prop_assert_eq!(e.to_string(), g.to_string()),
                        (e, g) => prop_assert!(
                            false, "{granularity} of {array:?}: built-in {e:?}, ours {g:?}"
                        ),
                    }
                }
            }
        }
    }

    /// What the plan computed before the rule: the date cast to a timestamp, truncated by
    /// the built-in, cast back.
    fn through_timestamps(granularity: &str, dates: &ArrayRef) -> Result<ArrayRef> {
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let timestamps = cast_with_options(
            dates,
            &DataType::Timestamp(TimeUnit::Nanosecond, None),
            &strict,
        )?;
        let builtin = datafusion::functions::datetime::date_trunc();
        let truncated = call(builtin.inner().as_ref(), granularity, timestamps)?;
        Ok(cast_with_options(&truncated, &DataType::Date32, &strict)?)
    }

    /// Dates anywhere in Date32, mostly where timestamps reach, the edges of both.
    fn any_dates() -> impl Strategy<Value = Vec<Option<i32>>> {
        proptest::collection::vec(
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(i32::MIN)),
                1 => Just(Some(i32::MAX)),
                1 => Just(Some(NANOSECOND_DAYS as i32)),
                1 => Just(Some(-(NANOSECOND_DAYS as i32))),
                6 => (-110_000i32..110_000).prop_map(Some),
                2 => any::<i32>().prop_map(Some),
            ],
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(23),
            ..ProptestConfig::default()
        })]

        #[test]
        fn every_date_truncates_as_through_the_timestamps(dates in any_dates()) {
            let dates: ArrayRef = Arc::new(Date32Array::from(dates));
            for granularity in ["day", "week", "month", "quarter", "year", "Month", "hour"] {
                let expected = through_timestamps(granularity, &dates);
                let got = call(&DateTruncToDate::new(), granularity, Arc::clone(&dates));
                match (expected, got) {
                    (Ok(e), Ok(g)) => prop_assert_eq!(
                        e.to_data(), g.to_data(), "{} of {:?}", granularity, dates
                    ),
                    (Err(_), Err(_)) => {}
                    (e, g) => prop_assert!(
                        false, "{granularity} of {dates:?}: through timestamps {e:?}, ours {g:?}"
                    ),
                }
            }
        }
    }

    /// `sql` over a table `t` of dates `d`, in a session with this crate's functions and
    /// rule (`ours`) or DataFusion's alone: the rows as text, and the optimized plan.
    fn run(ours: bool, dates: Vec<Option<i32>>, sql: &str) -> (Vec<String>, String) {
        use datafusion::arrow::datatypes::Schema;
        use datafusion::arrow::record_batch::RecordBatch;
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut ctx = datafusion::prelude::SessionContext::new();
            if ours {
                crate::register_session(&mut ctx).unwrap();
            }
            let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
            let batch =
                RecordBatch::try_new(schema, vec![Arc::new(Date32Array::from(dates))]).unwrap();
            ctx.register_batch("t", batch).unwrap();
            let frame = ctx.sql(sql).await.unwrap();
            let plan = frame
                .clone()
                .into_optimized_plan()
                .unwrap()
                .display_indent_schema()
                .to_string();
            let batches = frame.collect().await.unwrap();
            let mut rows = Vec::new();
            for batch in &batches {
                let options = FormatOptions::default();
                let columns: Vec<_> = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                    .collect();
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> =
                        columns.iter().map(|c| c.value(row).to_string()).collect();
                    rows.push(cells.join(" | "));
                }
            }
            (rows, plan)
        })
    }

    #[test]
    fn the_rule_truncates_dates_as_dates_with_the_same_rows_and_names() {
        // Every day from 1899-12-01 to 2101-01-31 (both sides of the epoch, leap years and
        // centuries), and a NULL.
        let first = crate::dates::from_ymd(1899, 12, 1).unwrap();
        let last = crate::dates::from_ymd(2101, 1, 31).unwrap();
        let dates: Vec<Option<i32>> = (first..=last).map(Some).chain([None]).collect();
        let sql = "SELECT d, CAST(date_trunc('month', d) AS DATE), \
                          CAST(date_trunc('Quarter', d) AS DATE) AS q, \
                          CAST(date_trunc('year', d) AS DATE) AS y, \
                          CAST(date_trunc('week', d) AS DATE) AS w, \
                          CAST(date_trunc('day', d) AS DATE) AS dd, \
                          date_trunc('month', d) AS m_ts \
                   FROM t ORDER BY d";
        let rows = dates.len();
        let (ours, plan) = run(true, dates.clone(), sql);
        let (builtin, builtin_plan) = run(false, dates, sql);
        assert_eq!(ours.len(), rows);
        assert_eq!(ours, builtin);
        // The casts are gone where the result is a date, kept where it is a timestamp; the
        // output schema (names and types) is the built-in plan's.
        let schema = |p: &str| {
            p.lines()
                .next()
                .unwrap()
                .split_once(" [")
                .unwrap()
                .1
                .to_string()
        };
        assert_eq!(schema(&plan), schema(&builtin_plan));
        assert_eq!(plan.matches("date_trunc_to_date(").count(), 5, "{plan}");
        assert_eq!(plan.matches("CAST(").count(), 1, "{plan}");
        assert!(
            !builtin_plan.contains("date_trunc_to_date"),
            "{builtin_plan}"
        );
        assert!(ours.contains(&"2024-02-29 | 2024-02-01 | 2024-01-01 | 2024-01-01 | 2024-02-26 | 2024-02-29 | 2024-02-01T00:00:00".to_string()));
        // In a GROUP BY, as analysts write it.
        let sql = "SELECT CAST(date_trunc('month', d) AS DATE) AS month, count(*) FROM t \
                   WHERE d >= DATE '2024-01-01' GROUP BY 1 ORDER BY 1 LIMIT 3";
        let (ours, plan) = run(true, (19_700..19_800).map(Some).collect(), sql);
        // (Days 19,700–19,799: 2023-12-09 to 2024-03-17.)
        assert_eq!(
            ours,
            ["2024-01-01 | 31", "2024-02-01 | 29", "2024-03-01 | 17"]
        );
        assert!(!plan.contains("Timestamp"), "{plan}");
    }

    #[test]
    fn calendar_granularities_of_a_date() {
        let day = |y, m, d| crate::dates::from_ymd(y, m, d).unwrap() as i64 * 86_400;
        let values: ArrayRef = Arc::new(TimestampSecondArray::from(vec![
            Some(day(2026, 10, 31) + 3_600),
            None,
            Some(day(2024, 2, 29)),
            Some(day(1969, 12, 31) + 86_399),
        ]));
        let expect = |g: &str, days: [i64; 3]| {
            let got = call(&DateTrunc::new(), g, Arc::clone(&values)).unwrap();
            let want: ArrayRef = Arc::new(TimestampSecondArray::from(vec![
                Some(days[0]),
                None,
                Some(days[1]),
                Some(days[2]),
            ]));
            assert_eq!(got.to_data(), want.to_data(), "{g}");
        };
        expect(
            "month",
            [day(2026, 10, 1), day(2024, 2, 1), day(1969, 12, 1)],
        );
        expect(
            "quarter",
            [day(2026, 10, 1), day(2024, 1, 1), day(1969, 10, 1)],
        );
        expect("year", [day(2026, 1, 1), day(2024, 1, 1), day(1969, 1, 1)]);
        // Mondays: 2026-10-26, 2024-02-26, 1969-12-29.
        expect(
            "week",
            [day(2026, 10, 26), day(2024, 2, 26), day(1969, 12, 29)],
        );
    }
}
