//! The `todo` binary: parses the command line, sets up logging and runs the chosen command until shutdown.

use clap::Parser;

/// jemalloc instead of the C library's allocator: in the server's profile under load, `malloc` and `free` were about
/// a sixth of all samples, most on the runtime's worker threads, and with jemalloc a create costs 4 to 8% less CPU
/// time for about 5 MB more resident memory (docs/benchmarks.md, "The global allocator"). It also serves the C
/// libraries' `malloc` and `free` (the crate's `unprefixed_malloc_on_supported_platforms` feature): SQLite allocates
/// for every statement, on the group writer's thread too.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = todo_bin::config::Cli::parse();
    todo_bin::telemetry::init_tracing(cli.log_format, &cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(todo_bin::cli::run(cli, todo_bin::shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
