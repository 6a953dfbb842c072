//! The `arq` binary: a thin wrapper that parses the command line, runs it, and turns any
//! error into one line on stderr and its exit code (2 for bad arguments, as clap does;
//! 1 otherwise).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = arq::cli::Cli::parse();
    match arq::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// glibc gives each thread that allocates its own malloc arena and keeps their freed
/// memory; with DataFusion's threads that fragmented the nightly job at a million
/// customers to 1.9–2.1 GB peak. Two arenas: 1.7 GB, same speed (benches/README.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread
    // starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
