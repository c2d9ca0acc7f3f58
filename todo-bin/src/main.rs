//! The `todo` binary: parses the command line, sets up logging and runs the chosen command until shutdown.

use clap::Parser;

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
