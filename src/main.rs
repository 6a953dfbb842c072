//! The `arq` binary: a thin wrapper that parses the command line, runs it, and turns any
//! error into one line on stderr and its exit code (2 for bad arguments, as clap does;
//! 1 otherwise).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tune_malloc();
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
/// Blocks of 1 MiB and more (Arrow's buffers) mapped on their own and returned when freed:
/// glibc otherwise raises that bound to 32 MiB once one is freed, and keeps the freed
/// buffers of a stage's queries in its heap, where the next stage's do not always fit:
/// 1.69–1.71 -> 1.55–1.59 GB peak at a million customers, the same time within the noise
/// (benches/README.md, eleventh session).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread
    // starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
