//! `arq cluster scheduler|executor`: a node of a Ballista cluster (see [`crate::cluster`]).

use crate::cli::args::{ClusterCommandArgs, ClusterNode};
use crate::cli::config::Config;
use crate::cluster::ClusterUrl;
use crate::cluster::process::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
use crate::error::Result;

/// Runs the node until the process is stopped.
pub fn run(config: &Config, args: &ClusterCommandArgs) -> Result<()> {
    crate::cluster::process::init_logging()?;
    let model = config.session_model().cloned();
    match &args.node {
        ClusterNode::Scheduler(a) => config.block_on(run_scheduler(SchedulerOptions {
            bind: a.bind,
            model,
        })),
        ClusterNode::Executor(a) => {
            let scheduler = ClusterUrl::parse(&a.scheduler)?;
            config.block_on(run_executor(ExecutorOptions {
                scheduler,
                bind: a.bind,
                concurrent_tasks: a.concurrent_tasks,
                model,
                work_dir: a.work_dir.clone(),
            }))
        }
    }
}
