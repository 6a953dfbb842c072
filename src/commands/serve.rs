//! `arq serve`: the warehouse over the PostgreSQL wire protocol (see [`crate::serve`]), or
//! `--add-user NAME` to write a user's salted password into the users file.

use crate::cli::args::ServeArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::memory::MemoryLimit;
use crate::serve::handler::Limits;
use crate::serve::{ServeOptions, serve, users};
use crate::warehouse::AsOf;

/// The share of RAM one statement may use by default (4 GiB when RAM is unknown).
const QUERY_MEMORY_SHARE: &str = "20%";

pub fn run(config: &Config, args: &ServeArgs, as_of: AsOf) -> Result<()> {
    if let (Some(name), Some(path)) = (&args.add_user, &args.users) {
        eprintln!("{}", users::add_user(path, name)?);
        return Ok(());
    }
    if args.statement_timeout > args.max_statement_timeout {
        return Err(ArqError::Usage(format!(
            "--statement-timeout ({} ms) is above --max-statement-timeout ({} ms)",
            args.statement_timeout.as_millis(),
            args.max_statement_timeout.as_millis()
        )));
    }
    let query_memory = match args.query_memory {
        Some(limit) => limit,
        None => QUERY_MEMORY_SHARE.parse().unwrap_or(MemoryLimit(4 << 30)),
    };
    let options = ServeOptions {
        listen: args.listen,
        users_file: args.users.clone(),
        trust_local: args.trust_local,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        require_tls: args.require_tls,
        limits: Limits {
            query_memory,
            statement_timeout: args.statement_timeout,
            max_statement_timeout: args.max_statement_timeout,
        },
        max_connections: args.max_connections,
        reload_interval: args.reload_interval,
    };
    let warehouse = config.warehouse()?.clone();
    let model = config.session_model().cloned();
    let queries = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("arq-serve-query")
        .build()
        .map_err(|e| ArqError::Internal(format!("cannot start the query runtime: {e}")))?;
    let served = config.block_on(serve(&options, warehouse, as_of, model, queries.handle()));
    queries.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}
