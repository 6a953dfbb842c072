//! The memory limit of a session, so a runaway query fails with a clear error instead of
//! running the machine out of memory: DataFusion's memory pool for the operators that
//! reserve memory (sorts, joins, aggregations), and a check of the result size for the
//! built-in functions that allocate a whole result in one step (`repeat`, `lpad`,
//! `rpad`, `array_repeat`), which no pool sees.
//!
//! The limit is `--memory-limit` (`4GB`, `512MB`, `70%` of RAM), 70 % of RAM by default.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::prelude::SessionContext;

/// The share of RAM a session may use when no limit is given.
pub const DEFAULT_SHARE: f64 = 0.70;

/// A memory limit in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(pub usize);

impl MemoryLimit {
    /// 70 % of the machine's RAM (none when it cannot be read).
    pub fn default_for_machine() -> Option<MemoryLimit> {
        physical_memory().map(|ram| MemoryLimit((ram as f64 * DEFAULT_SHARE) as usize))
    }
}

impl std::str::FromStr for MemoryLimit {
    type Err = String;

    /// `4GB`, `512MB`, `100KB`, `1000000` (bytes) or `70%` (of RAM); powers of 1024.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim().to_ascii_uppercase();
        let bad = || format!("`{text}` is not a memory size such as 4GB, 512MB or 70%");
        if let Some(percent) = t.strip_suffix('%') {
            let share: f64 = percent.trim().parse().map_err(|_| bad())?;
            if !(share > 0.0 && share <= 100.0) {
                return Err(format!(
                    "`{text}`: a share of RAM is above 0 % and at most 100 %"
                ));
            }
            let ram = physical_memory().ok_or("the machine's RAM is unknown: give a size")?;
            return Ok(MemoryLimit((ram as f64 * share / 100.0) as usize));
        }
        let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t.as_str(), ""),
        };
        let factor: u64 = match unit {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            "T" | "TB" | "TIB" => 1 << 40,
            _ => return Err(bad()),
        };
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        let bytes = value * factor as f64;
        if !(bytes >= 1.0 && bytes < usize::MAX as f64) {
            return Err(bad());
        }
        Ok(MemoryLimit(bytes as usize))
    }
}

/// Total RAM from `/proc/meminfo` (Linux).
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A size for messages: `1.5 GiB`.
pub fn human(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// The built-ins guarded, and how their result grows: `repeat` and `array_repeat` by
/// their first argument's size times the count; `lpad`/`rpad` by the length (up to 4
/// bytes a character).
const GUARDED: [(&str, Growth); 4] = [
    ("repeat", Growth::Copies),
    ("array_repeat", Growth::Copies),
    ("lpad", Growth::Characters),
    ("rpad", Growth::Characters),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    Copies,
    Characters,
}

/// Replaces the guarded built-ins of `ctx` by checked ones.
pub fn guard_functions(ctx: &SessionContext, limit: MemoryLimit) {
    let functions = ctx.state().scalar_functions().clone();
    for (name, growth) in GUARDED {
        if let Some(inner) = functions.get(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(SizeGuarded {
                inner: Arc::clone(inner),
                growth,
                limit: limit.0,
            }));
        }
    }
}

/// A built-in whose result size is checked against the limit before it is computed.
#[derive(Debug)]
struct SizeGuarded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    limit: usize,
}

impl PartialEq for SizeGuarded {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name() && self.limit == other.limit
    }
}

impl Eq for SizeGuarded {}

impl Hash for SizeGuarded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
        self.limit.hash(state);
    }
}

/// The largest count (second argument) of a call, 0 for NULL or negative.
fn largest_count(value: &ColumnarValue) -> DfResult<u128> {
    Ok(match value {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(n)) => n.max(0) as u128,
            _ => 0,
        },
        ColumnarValue::Array(a) => {
            let a = cast(a, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            a.iter().flatten().max().unwrap_or(0).max(0) as u128
        }
    })
}

/// The bytes of one value: a string's or a binary's length, a primitive's width.
fn scalar_bytes(value: &ScalarValue) -> u128 {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.len() as u128,
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => b.len() as u128,
        other => other
            .data_type()
            .primitive_width()
            .unwrap_or_else(|| other.size()) as u128,
    }
}

impl SizeGuarded {
    /// An upper estimate of the memory the call takes: twice the result's bytes, since a
    /// builder that grows by doubling may briefly hold both.
    fn estimate(&self, args: &ScalarFunctionArgs) -> DfResult<u128> {
        let [first, count, ..] = args.args.as_slice() else {
            return Ok(0);
        };
        let count = largest_count(count)? * 2;
        let rows = args.number_rows.max(1) as u128;
        Ok(match (self.growth, first) {
            (Growth::Characters, _) => count * 4 * rows,
            (Growth::Copies, ColumnarValue::Scalar(s)) => scalar_bytes(s) * count * rows,
            (Growth::Copies, ColumnarValue::Array(a)) => a.get_buffer_memory_size() as u128 * count,
        })
    }
}

impl ScalarUDFImpl for SizeGuarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let estimate = self.estimate(&args)?;
        if estimate > self.limit as u128 {
            return exec_err!(
                "{}: the call would take about {}, above the session's memory limit of {} \
                 (--memory-limit)",
                self.inner.name(),
                human(estimate),
                human(self.limit as u128)
            );
        }
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        let p = |s: &str| s.parse::<MemoryLimit>();
        assert_eq!(p("4GB"), Ok(MemoryLimit(4 << 30)));
        assert_eq!(p("512mb"), Ok(MemoryLimit(512 << 20)));
        assert_eq!(p("1.5G"), Ok(MemoryLimit(3 << 29)));
        assert_eq!(p("1000"), Ok(MemoryLimit(1000)));
        assert!(p("lots").is_err());
        assert!(p("0").is_err());
        assert!(p("-1GB").is_err());
        assert!(p("150%").is_err());
        if physical_memory().is_some() {
            assert!(p("50%").unwrap().0 > 0);
        }
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
