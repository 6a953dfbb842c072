//! arq-udfs: DataFusion SQL functions for accounts receivable.
//!
//! Add every function to your own DataFusion session with one call:
//!
//! ```
//! # use datafusion::prelude::SessionContext;
//! let mut ctx = SessionContext::new();
//! arq_udfs::register_all(&mut ctx).unwrap();
//! ```
//!
//! One file per function, in the style of `datafusion-functions`: each has a singleton
//! constructor, `#[user_doc]` documentation with an SQL example, a scalar fast path,
//! and NULL in → NULL out.

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{Documentation, ScalarUDF};

pub mod aging_bucket;
pub mod aging_bucket_rank;
pub mod bounds;
mod dates;
pub mod days_past_due;

/// Makes a function that returns the shared instance of a UDF (like
/// `datafusion_functions::make_udf_function!`).
macro_rules! make_udf_function {
    ($udf:ty, $name:ident) => {
        #[doc = concat!("The `", stringify!($name), "` SQL function (shared instance).")]
        pub fn $name() -> std::sync::Arc<datafusion::logical_expr::ScalarUDF> {
            static INSTANCE: std::sync::LazyLock<
                std::sync::Arc<datafusion::logical_expr::ScalarUDF>,
            > = std::sync::LazyLock::new(|| {
                std::sync::Arc::new(datafusion::logical_expr::ScalarUDF::new_from_impl(
                    <$udf>::new(),
                ))
            });
            std::sync::Arc::clone(&INSTANCE)
        }
    };
}

make_udf_function!(days_past_due::DaysPastDue, days_past_due_udf);
make_udf_function!(aging_bucket::AgingBucket, aging_bucket_udf);
make_udf_function!(aging_bucket_rank::AgingBucketRank, aging_bucket_rank_udf);

/// Every scalar function of this crate.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        days_past_due_udf(),
        aging_bucket_udf(),
        aging_bucket_rank_udf(),
    ]
}

/// A function's name and documentation, for listings such as `arq functions`.
#[derive(Debug, Clone)]
pub struct FunctionDoc {
    pub name: String,
    pub kind: &'static str,
    pub documentation: Documentation,
}

/// Name and documentation of every function, sorted by name.
pub fn documentation() -> Vec<FunctionDoc> {
    let mut docs: Vec<FunctionDoc> = scalar_functions()
        .iter()
        .filter_map(|f| {
            f.documentation().map(|d| FunctionDoc {
                name: f.name().to_string(),
                kind: "scalar",
                documentation: d.clone(),
            })
        })
        .collect();
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    docs
}

/// Registers every function of this crate in `registry`.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udf in scalar_functions() {
        registry.register_udf(udf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn function_names_and_aliases_are_unique() {
        let mut seen = HashSet::new();
        for f in scalar_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                assert!(
                    seen.insert(name.to_string()),
                    "duplicate function name {name}"
                );
            }
        }
    }

    #[test]
    fn no_function_shadows_a_datafusion_built_in() {
        let ctx = datafusion::prelude::SessionContext::new();
        let built_in: HashSet<String> = ctx.state().scalar_functions().keys().cloned().collect();
        for f in scalar_functions() {
            assert!(
                !built_in.contains(f.name()),
                "{} is a DataFusion built-in",
                f.name()
            );
        }
    }

    #[test]
    fn every_function_is_documented_with_an_example() {
        for f in scalar_functions() {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no docs", f.name()));
            assert!(doc.sql_example.is_some(), "{} has no SQL example", f.name());
        }
        assert_eq!(documentation().len(), scalar_functions().len());
    }
}
