//! `undersigned`: serve, migrate, and the operators' command line (in `cli`).

mod cli;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use undersigned::Config;

use crate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::from_args() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("undersigned: {e}");
            return e.exit_code();
        }
    };
    // Completions need no configuration: a shell's start-up must not fail
    // for want of a database address.
    if let Command::Completions { shell } = cli.command {
        cli::print_completions(shell);
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("undersigned: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    init_logging(&config, serving);
    match cli::execute(cli.command, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Said once: the service's end in its log, in the log's format
            // (`UNDERSIGNED_LOG_FORMAT`); a command's failure to whoever typed it.
            if serving {
                tracing::error!(error = %e, "failed");
            } else {
                eprintln!("undersigned: {e}");
            }
            e.exit_code()
        }
    }
}

/// Logs go to stderr, so stdout carries only what a command prints for scripts.
/// The service logs at info; a command only its warnings and errors, so that
/// what it prints is not buried (`RUST_LOG` sets either).
fn init_logging(config: &Config, serving: bool) {
    let level = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        undersigned::LogFormat::Json => builder.json().init(),
        undersigned::LogFormat::Text => builder.init(),
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("stop requested");
}
