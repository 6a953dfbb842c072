//! `arq cluster scheduler` and `arq cluster executor`: Ballista's scheduler and executor
//! processes, started from the arq binary with arq's functions (and the model's) and
//! arq's object stores (local files, and buckets with the AWS_* settings).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use arq_models::sql::SessionModel;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;

use super::ClusterUrl;
use super::codec::ClusterCodec;
use super::shuffle_order::SortAfterShuffle;
use crate::error::{ArqError, Result};
use crate::storage::BucketRegistry;

/// How often an executor tells the scheduler it is alive, and how long the scheduler
/// waits before it takes an executor for dead and runs its tasks elsewhere (Ballista's
/// defaults are 60 s and 180 s: a lost executor would stall a query for minutes).
pub const HEARTBEAT_SECONDS: u64 = 5;
pub const EXECUTOR_TIMEOUT_SECONDS: u64 = 20;

/// Executors ask the scheduler for tasks (Ballista's pull-staged scheduling): a task
/// an executor cannot run (a function it lacks) then fails with the executor's reason,
/// which reaches the client; pushed tasks are refused without one.
const SCHEDULING: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    pub model: Option<SessionModel>,
}

/// Runs the scheduler until the process is stopped.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    let model = options.model.clone();
    let session_builder = Arc::new(move |config: SessionConfig| {
        // Ballista's own session (its optimizer rules, its functions), then arq's.
        let state = default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(BucketRegistry::default()))
            .build_arc()?;
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .with_physical_optimizer_rule(Arc::new(SortAfterShuffle))
            .build();
        super::register_functions(&mut state, model.as_ref())?;
        Ok(state)
    });
    let mut config = SchedulerConfig::default()
        .with_hostname(options.bind.ip().to_string())
        .with_port(options.bind.port())
        .with_override_session_builder(session_builder)
        .with_override_config_producer(Arc::new(SessionConfig::new_with_ballista))
        .with_scheduler_policy(SCHEDULING);
    config.bind_host = options.bind.ip().to_string();
    config.override_logical_codec = Some(Arc::new(ClusterCodec::default()));
    config.executor_timeout_seconds = EXECUTOR_TIMEOUT_SECONDS;
    config.expire_dead_executor_interval_seconds = HEARTBEAT_SECONDS;
    config.no_executors_grace_period_seconds = EXECUTOR_TIMEOUT_SECONDS;
    // The port is taken now, so that a busy one is an error here and not in a log.
    TcpListener::bind(options.bind).map_err(|e| usage_bind("the scheduler", options.bind, e))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| internal("cannot set up the scheduler", e))?;
    let url = ClusterUrl::parse(&options.bind.to_string())?;
    eprintln!(
        "arq cluster scheduler: listening on {} (clients: --cluster {url}; executors: \
         --scheduler {}){}",
        options.bind,
        options.bind,
        model_note(options.model.as_ref())
    );
    start_server(cluster, options.bind, Arc::new(config))
        .await
        .map_err(|e| internal("the scheduler stopped", e))
}

/// The executor's settings.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: ClusterUrl,
    /// Where it listens for the scheduler and for other executors' shuffle reads; `None`
    /// takes two free ports on 127.0.0.1.
    pub bind: Option<SocketAddr>,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    pub model: Option<SessionModel>,
    /// Where shuffle files are kept (default: a temporary folder).
    pub work_dir: Option<std::path::PathBuf>,
}

/// Runs an executor until the process is stopped (or the scheduler tells it to stop).
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let (host, port, grpc_port) = match options.bind {
        Some(bind) => (bind.ip().to_string(), bind.port(), free_port(bind.ip())?),
        None => {
            let ip = std::net::IpAddr::from([127, 0, 0, 1]);
            (ip.to_string(), free_port(ip)?, free_port(ip)?)
        }
    };
    let mut registry = BallistaFunctionRegistry::default();
    if with_arq_functions() {
        let (scalars, aggregates) = super::functions(options.model.as_ref());
        for udf in scalars {
            for name in std::iter::once(udf.name()).chain(udf.aliases().iter().map(String::as_str))
            {
                registry
                    .scalar_functions
                    .insert(name.to_string(), udf.clone());
            }
        }
        for udaf in aggregates {
            for name in
                std::iter::once(udaf.name()).chain(udaf.aliases().iter().map(String::as_str))
            {
                registry
                    .aggregate_functions
                    .insert(name.to_string(), udaf.clone());
            }
        }
    }
    let work_dir = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("arq-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| ArqError::io(&work_dir, e))?;
    let shuffle_dir = work_dir.to_string_lossy().to_string();
    let spill_dir = shuffle_dir.clone();
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_: &SessionConfig| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(spill_dir.clone())
            .with_object_store_registry(Arc::new(BucketRegistry::default()))
            .build_arc()
    });
    let config = ExecutorProcessConfig {
        bind_host: host.clone(),
        external_host: Some(host.clone()),
        port,
        grpc_port,
        scheduler_host: options.scheduler.host().to_string(),
        scheduler_port: options.scheduler.port(),
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrent_tasks,
        task_scheduling_policy: SCHEDULING,
        work_dir: Some(shuffle_dir),
        print_thread_info: false,
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(Arc::new(SessionConfig::new_with_ballista)),
        override_logical_codec: Some(Arc::new(ClusterCodec::default())),
        ..Default::default()
    };
    eprintln!(
        "arq cluster executor {}: listening on {host}:{port} (shuffle reads) and {host}:{grpc_port}, \
         {} tasks at once, scheduler {}{}",
        config.executor_id,
        match options.concurrent_tasks {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        options.scheduler,
        model_note(options.model.as_ref())
    );
    let result = start_executor_process(Arc::new(config)).await;
    if options.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    result.map_err(|e| ArqError::Cluster {
        url: options.scheduler.to_string(),
        message: format!("the executor stopped: {}", super::transport_cause(&e)),
    })
}

/// Whether the executor registers arq's functions: always, but for the test of an
/// executor that lacks them (fault-injection builds, ARQ_CLUSTER_EXECUTOR_WITHOUT_FUNCTIONS).
fn with_arq_functions() -> bool {
    #[cfg(feature = "fault-injection")]
    if std::env::var_os("ARQ_CLUSTER_EXECUTOR_WITHOUT_FUNCTIONS").is_some() {
        return false;
    }
    true
}

fn model_note(model: Option<&SessionModel>) -> String {
    match model {
        Some(m) => format!(", model {}", m.name),
        None => ", no model".into(),
    }
}

/// A port free on `ip` now (the executor binds it a moment later).
fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    let bind = SocketAddr::new(ip, 0);
    let listener = TcpListener::bind(bind).map_err(|e| usage_bind("the executor", bind, e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ArqError::Internal(format!("no local address: {e}")))
}

fn usage_bind(what: &str, bind: SocketAddr, e: std::io::Error) -> ArqError {
    ArqError::Usage(format!("{what} cannot listen on {bind}: {e}"))
}

fn internal(what: &str, e: impl std::fmt::Display) -> ArqError {
    ArqError::Internal(format!("{what}: {e}"))
}

/// Prints what Ballista logs at `ARQ_CLUSTER_LOG` (error, warn — the default —, info,
/// debug or trace) and above on stderr, one line each: a lost executor, a failed task.
pub fn init_logging() -> Result<()> {
    let level = match std::env::var("ARQ_CLUSTER_LOG") {
        Err(_) => log::LevelFilter::Warn,
        Ok(text) => text.parse::<log::LevelFilter>().map_err(|_| {
            ArqError::Usage(format!(
                "ARQ_CLUSTER_LOG={text}: use error, warn, info, debug or trace"
            ))
        })?,
    };
    static LOGGER: StderrLogger = StderrLogger;
    // A second call (in-process tests) keeps the first logger.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    Ok(())
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{} {:<5} {}: {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                record.level(),
                record.target(),
                crate::error::one_line(&record.args().to_string())
            );
        }
    }

    fn flush(&self) {}
}
