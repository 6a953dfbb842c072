//! Columns of our own queries' results, read by name as the type the Rust side uses:
//! text, money (Decimal128(38, 2) cents), whole numbers, flags. A missing column is an
//! error naming it and the result (`what`).

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Decimal128Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int32Type};

use crate::error::{ModelError, Result};
use crate::money::MONEY_SUM;

/// A batch whose columns are read by name.
pub struct Named<'a> {
    batch: &'a RecordBatch,
    what: &'static str,
}

impl<'a> Named<'a> {
    /// `what` names the result in messages ("the queue inputs").
    pub fn new(batch: &'a RecordBatch, what: &'static str) -> Named<'a> {
        Named { batch, what }
    }

    pub fn column(&self, name: &str) -> Result<&'a ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| ModelError::Data(format!("{} have no column `{name}`", self.what)))
    }

    pub fn text(&self, name: &str) -> Result<StringArray> {
        Ok(cast(self.column(name)?, &DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    }

    /// Money in cents at scale 2.
    pub fn money(&self, name: &str) -> Result<Decimal128Array> {
        Ok(cast(self.column(name)?, &MONEY_SUM)?
            .as_primitive::<Decimal128Type>()
            .clone())
    }

    pub fn int(&self, name: &str) -> Result<Int32Array> {
        Ok(cast(self.column(name)?, &DataType::Int32)?
            .as_primitive::<Int32Type>()
            .clone())
    }

    pub fn flag(&self, name: &str) -> Result<BooleanArray> {
        Ok(cast(self.column(name)?, &DataType::Boolean)?
            .as_boolean()
            .clone())
    }
}
