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
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF};

pub mod aging_bucket;
pub mod aging_bucket_rank;
pub mod bounds;
mod builtin;
pub mod count_distinct;
mod date_args;
pub mod date_trunc;
pub mod dates;
pub mod days_past_due;
pub mod first_last;
pub mod metrics;
pub mod table_function;
pub mod weighted_dpd;

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

/// The `weighted_dpd` aggregate (shared instance).
pub fn weighted_dpd_udaf() -> Arc<AggregateUDF> {
    static INSTANCE: std::sync::LazyLock<Arc<AggregateUDF>> = std::sync::LazyLock::new(|| {
        Arc::new(AggregateUDF::new_from_impl(weighted_dpd::WeightedDpd::new()))
    });
    Arc::clone(&INSTANCE)
}

/// Every aggregate function of this crate.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![weighted_dpd_udaf()]
}

/// Every scalar function of this crate.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        days_past_due_udf(),
        aging_bucket_udf(),
        aging_bucket_rank_udf(),
    ]
}

/// DataFusion built-ins replaced by faster versions with the same name, signature and
/// results (`date_trunc`'s calendar granularities): registered by [`register_all`] over
/// the built-ins; not listed among this crate's functions.
pub fn faster_builtins() -> Vec<Arc<ScalarUDF>> {
    static DATE_TRUNC: std::sync::LazyLock<Arc<ScalarUDF>> = std::sync::LazyLock::new(|| {
        Arc::new(ScalarUDF::new_from_impl(date_trunc::DateTrunc::new()))
    });
    vec![Arc::clone(&DATE_TRUNC)]
}

/// DataFusion's aggregate built-ins replaced the same way (`count`, for `count(DISTINCT)`
/// of text; `first_value` and `last_value`, for their `ORDER BY` forms).
pub fn faster_aggregate_builtins() -> Vec<Arc<AggregateUDF>> {
    static COUNT: std::sync::LazyLock<Arc<AggregateUDF>> = std::sync::LazyLock::new(|| {
        Arc::new(AggregateUDF::new_from_impl(count_distinct::Count::new()))
    });
    vec![
        Arc::clone(&COUNT),
        first_last::first_value(),
        first_last::last_value(),
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
        .chain(aggregate_functions().iter().filter_map(|f| {
            f.documentation().map(|d| FunctionDoc {
                name: f.name().to_string(),
                kind: "aggregate",
                documentation: d.clone(),
            })
        }))
        .chain(
            metrics::table_function_docs()
                .into_iter()
                .map(|(name, documentation)| FunctionDoc {
                    name: name.to_string(),
                    kind: "table",
                    documentation,
                }),
        )
        .collect();
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    docs
}

/// Registers every scalar and aggregate function of this crate, and the
/// [`faster_builtins`] and [`faster_aggregate_builtins`], in `registry`. Table functions
/// need a `SessionContext`: see [`register_session`].
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udf in scalar_functions().into_iter().chain(faster_builtins()) {
        registry.register_udf(udf)?;
    }
    for udaf in aggregate_functions()
        .into_iter()
        .chain(faster_aggregate_builtins())
    {
        registry.register_udaf(udaf)?;
    }
    Ok(())
}

/// Registers every function of this crate, table functions included, in a session, and
/// the analyzer rule that truncates dates as dates ([`date_trunc::DatesTruncatedAsDates`]).
pub fn register_session(ctx: &mut datafusion::prelude::SessionContext) -> Result<()> {
    register_all(ctx)?;
    ctx.add_analyzer_rule(Arc::new(date_trunc::DatesTruncatedAsDates::new()));
    for (name, function) in metrics::table_functions() {
        ctx.register_udtf(name, function);
    }
    Ok(())
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every name (and alias) this crate registers.
    fn all_names() -> Vec<String> {
        let mut names = Vec::new();
        for f in scalar_functions() {
            names.push(f.name().to_string());
            names.extend(f.aliases().iter().cloned());
        }
        for f in aggregate_functions() {
            names.push(f.name().to_string());
            names.extend(f.aliases().iter().cloned());
        }
        names.extend(
            metrics::table_functions()
                .iter()
                .map(|(n, _)| n.to_string()),
        );
        names
    }

    #[test]
    fn function_names_and_aliases_are_unique() {
        let mut seen = HashSet::new();
        for name in all_names() {
            assert!(seen.insert(name.clone()), "duplicate function name {name}");
        }
    }

    #[test]
    fn no_function_shadows_a_datafusion_built_in() {
        let ctx = datafusion::prelude::SessionContext::new();
        let state = ctx.state();
        for name in all_names() {
            assert!(
                !state.scalar_functions().contains_key(&name)
                    && !state.aggregate_functions().contains_key(&name)
                    && !state.window_functions().contains_key(&name)
                    && !state.table_functions().contains_key(&name),
                "{name} is a DataFusion built-in"
            );
        }
    }

    #[test]
    fn faster_builtins_replace_a_builtin_of_the_same_name_and_signature() {
        let builtins = datafusion::prelude::SessionContext::new().state();
        let mut ctx = datafusion::prelude::SessionContext::new();
        register_all(&mut ctx).unwrap();
        let state = ctx.state();
        for faster in faster_builtins() {
            let name = faster.name();
            let builtin = &builtins.scalar_functions()[name];
            assert_eq!(faster.signature(), builtin.signature(), "{name}");
            assert_eq!(faster.aliases(), builtin.aliases(), "{name}");
            for alias in std::iter::once(name).chain(faster.aliases().iter().map(|a| a.as_str())) {
                let registered = state.udf(alias).unwrap();
                assert!(
                    registered.inner().is::<date_trunc::DateTrunc>(),
                    "{alias} is still the built-in"
                );
            }
        }
    }

    #[test]
    fn faster_aggregates_replace_a_builtin_of_the_same_name_and_signature() {
        let builtins = datafusion::prelude::SessionContext::new().state();
        let mut ctx = datafusion::prelude::SessionContext::new();
        register_all(&mut ctx).unwrap();
        let state = ctx.state();
        let faster = faster_aggregate_builtins();
        let names: Vec<&str> = faster.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["count", "first_value", "last_value"]);
        for faster in &faster {
            let name = faster.name();
            let builtin = &builtins.aggregate_functions()[name];
            assert_eq!(faster.signature(), builtin.signature(), "{name}");
            assert_eq!(faster.aliases(), builtin.aliases(), "{name}");
            assert_eq!(faster.documentation(), builtin.documentation(), "{name}");
            for alias in std::iter::once(name).chain(faster.aliases().iter().map(|a| a.as_str())) {
                let registered = state.udaf(alias).unwrap();
                assert!(
                    registered.inner().is::<count_distinct::Count>()
                        || registered.inner().is::<first_last::FirstLast>(),
                    "{alias} is still the built-in"
                );
            }
        }
    }

    #[test]
    fn every_function_is_documented_with_an_example() {
        let docs = documentation();
        assert_eq!(docs.len(), all_names().len());
        for doc in docs {
            assert!(
                doc.documentation.sql_example.is_some(),
                "{} has no SQL example",
                doc.name
            );
        }
    }
}
