//! Shared date handling: argument coercion to `Date32` and a kernel that maps every
//! (due_date, as_of) pair to a value of days past due, with separate scalar and array
//! paths so a constant `as_of` never becomes an array.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::compute::kernels::arity::{binary, unary};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, Date32Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;

/// Whether `t` can be read as a date (it is cast to `Date32` before the call).
pub fn is_date_like(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Null
    )
}

/// The type argument `position` (1-based) of `function` is coerced to: `Date32`.
pub fn coerce_to_date(
    function: &str,
    position: usize,
    name: &str,
    t: &DataType,
) -> Result<DataType> {
    if is_date_like(t) {
        Ok(DataType::Date32)
    } else {
        plan_err!("{function}: argument {position} ({name}) must be a date or timestamp, got {t}")
    }
}

/// Days from `due` to `as_of` (positive when overdue), without overflow.
#[inline]
pub fn days_between(due: i32, as_of: i32) -> i64 {
    as_of as i64 - due as i64
}

/// A value of the result of mapping days past due, scalar or array.
pub enum Mapped<T: ArrowPrimitiveType> {
    Scalar(Option<T::Native>),
    Array(PrimitiveArray<T>),
}

/// Applies `f(days)` to every (due, as_of) pair; NULL in either gives NULL.
pub fn map_days<T: ArrowPrimitiveType>(
    due: &ColumnarValue,
    as_of: &ColumnarValue,
    f: impl Fn(i64) -> T::Native,
) -> Result<Mapped<T>> {
    Ok(match (due, as_of) {
        (ColumnarValue::Scalar(d), ColumnarValue::Scalar(a)) => Mapped::Scalar(
            date32(d)?
                .zip(date32(a)?)
                .map(|(d, a)| f(days_between(d, a))),
        ),
        (ColumnarValue::Array(d), ColumnarValue::Scalar(a)) => match date32(a)? {
            None => Mapped::Scalar(None),
            Some(a) => Mapped::Array(unary(dates(d)?, |d| f(days_between(d, a)))),
        },
        (ColumnarValue::Scalar(d), ColumnarValue::Array(a)) => match date32(d)? {
            None => Mapped::Scalar(None),
            Some(d) => Mapped::Array(unary(dates(a)?, |a| f(days_between(d, a)))),
        },
        (ColumnarValue::Array(d), ColumnarValue::Array(a)) => {
            Mapped::Array(binary(dates(d)?, dates(a)?, |d, a| f(days_between(d, a)))?)
        }
    })
}

impl<T: ArrowPrimitiveType> Mapped<T> {
    /// As a `ColumnarValue` of `T`.
    pub fn into_columnar(self, scalar: impl Fn(Option<T::Native>) -> ScalarValue) -> ColumnarValue {
        match self {
            Mapped::Scalar(v) => ColumnarValue::Scalar(scalar(v)),
            Mapped::Array(a) => ColumnarValue::Array(Arc::new(a) as ArrayRef),
        }
    }
}

fn date32(v: &ScalarValue) -> Result<Option<i32>> {
    match v {
        ScalarValue::Date32(d) => Ok(*d),
        ScalarValue::Null => Ok(None),
        other => exec_err!("expected a Date32 argument, got {}", other.data_type()),
    }
}

fn dates(a: &ArrayRef) -> Result<&PrimitiveArray<Date32Type>> {
    match a.data_type() {
        DataType::Date32 => Ok(a.as_primitive::<Date32Type>()),
        other => exec_err!("expected a Date32 argument, got {other}"),
    }
}
