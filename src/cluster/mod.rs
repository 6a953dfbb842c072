//! arq on an Apache DataFusion Ballista cluster: the scheduler and executor processes
//! (`arq cluster scheduler|executor`, [`process`]) with arq's functions registered on
//! both sides, and the client session of `--cluster df://HOST:PORT` ([`client`]).
//!
//! Every process reads the warehouse itself, so a cluster reads a warehouse all of them
//! see: a bucket (`s3://…`, with the AWS_* settings in each process's environment) or a
//! folder at the same path on every machine.

pub mod client;
pub mod codec;
pub mod process;
pub mod shuffle_order;

use std::sync::Arc;

use arq_models::sql::SessionModel;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

use crate::error::{ArqError, Result};

/// The scheduler's port when a URL gives none (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// A scheduler's address, `df://HOST:PORT` (as Ballista's clients write it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    host: String,
    port: u16,
}

impl ClusterUrl {
    /// `df://HOST[:PORT]`, or `HOST:PORT` (what `--scheduler` takes).
    pub fn parse(text: &str) -> Result<ClusterUrl> {
        let bad = |why: &str| {
            ArqError::Usage(format!(
                "`{text}`: {why} (write df://HOST:PORT, e.g. df://127.0.0.1:{DEFAULT_SCHEDULER_PORT})"
            ))
        };
        let rest = match text.split_once("://") {
            Some(("df", rest)) => rest,
            Some((scheme, _)) => return Err(bad(&format!("not a cluster address ({scheme}://)"))),
            None => text,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad("a cluster address has no path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            ),
            None => (rest, DEFAULT_SCHEDULER_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(ClusterUrl {
            host: host.to_string(),
            port,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scheduler's gRPC endpoint.
    pub fn scheduler(&self) -> String {
        match self.host.contains(':') {
            true => format!("http://[{}]:{}", self.host, self.port),
            false => format!("http://{}:{}", self.host, self.port),
        }
    }
}

impl std::fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "df://[{}]:{}", self.host, self.port),
            false => write!(f, "df://{}:{}", self.host, self.port),
        }
    }
}

/// The innermost cause of a gRPC transport error, on one line ("Connection refused").
pub fn transport_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// arq's scalar and aggregate functions (and the built-ins it computes faster) and the
/// model's scalar functions: what the scheduler and the executors register (arq has no
/// window functions; the table functions are planned by the client, see [`client`]).
pub fn functions(model: Option<&SessionModel>) -> (Vec<Arc<ScalarUDF>>, Vec<Arc<AggregateUDF>>) {
    let mut scalars = arq_udfs::scalar_functions();
    scalars.extend(arq_udfs::faster_builtins());
    scalars.extend(
        arq_models::sql::scalar_functions(model)
            .into_iter()
            .map(Arc::new),
    );
    let mut aggregates = arq_udfs::aggregate_functions();
    aggregates.extend(arq_udfs::faster_aggregate_builtins());
    (scalars, aggregates)
}

/// Registers [`functions`] in `registry`.
pub fn register_functions(
    registry: &mut dyn FunctionRegistry,
    model: Option<&SessionModel>,
) -> datafusion::error::Result<()> {
    let (scalars, aggregates) = functions(model);
    for udf in scalars {
        registry.register_udf(udf)?;
    }
    for udaf in aggregates {
        registry.register_udaf(udaf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        let url = ClusterUrl::parse("df://10.0.0.5:50051").unwrap();
        assert_eq!((url.host(), url.port()), ("10.0.0.5", 50051));
        assert_eq!(url.scheduler(), "http://10.0.0.5:50051");
        assert_eq!(url.to_string(), "df://10.0.0.5:50051");
        assert_eq!(ClusterUrl::parse("df://sched").unwrap().port(), 50050);
        assert_eq!(
            ClusterUrl::parse("sched:7000").unwrap().to_string(),
            "df://sched:7000"
        );
        assert_eq!(
            ClusterUrl::parse("df://[::1]:7000").unwrap().scheduler(),
            "http://[::1]:7000"
        );
        for bad in [
            "http://x:1",
            "df://:1",
            "df://x:0",
            "df://x:port",
            "df://x:1/db",
        ] {
            let err = ClusterUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("df://HOST:PORT"), "{err}");
        }
    }

    #[test]
    fn every_arq_function_is_registered_for_the_cluster() {
        let (scalars, aggregates) = functions(None);
        let names: Vec<&str> = scalars
            .iter()
            .map(|f| f.name())
            .chain(aggregates.iter().map(|f| f.name()))
            .collect();
        for expected in [
            "aging_bucket",
            "days_past_due",
            "weighted_dpd",
            "scorecard_points",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }
}
