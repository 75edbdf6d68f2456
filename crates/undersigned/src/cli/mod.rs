//! The operators' command line: one module per command, each doing what the
//! HTTP API does with the same store calls and the same audit entries, whose
//! detail says `"via": "command line"`.

mod bundle;
mod event;
mod export;
mod import;
mod listing;
mod petition;
mod progress;
mod seal;
mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use thiserror::Error;
use undersigned::{Config, StartError, run};
use undersigned_store::{Actor, AuditEntry, Petition, Store, StoreError, ensure_database, migrate};

#[derive(Parser)]
#[command(version, about = "Collects signatures for petitions and declarations")]
pub struct Cli {
    /// TOML configuration file (also UNDERSIGNED_CONFIG); UNDERSIGNED_* variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API (creates and migrates the database when needed).
    Serve,
    /// Create the database when missing and apply migrations, then exit.
    Migrate,
    /// Create, list, show, close and open petitions.
    Petition {
        #[command(subcommand)]
        command: petition::PetitionCommand,
    },
    /// Issue, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Street events and the codes their tablets enroll with.
    Event {
        #[command(subcommand)]
        command: event::EventCommand,
    },
    /// Export a petition's signatures to a file, as `GET
    /// /v1/petitions/{slug}/export` does (recorded in the audit trail).
    Export(export::ExportOptions),
    /// Import typed-in paper forms from a CSV (channel `paper`), as `POST
    /// /v1/petitions/{slug}/signatures:import` does; prints what became of
    /// each line (recorded in the audit trail).
    Import(import::ImportOptions),
    /// Check signed bundles and inclusion proofs, offline.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Make a campaign's key for sealed petitions, offline.
    SealKey {
        #[command(subcommand)]
        command: seal::SealKeyCommand,
    },
    /// Open a sealed petition's export (`format=sealed`) with a recipient's
    /// key into CSV, JSON lines, PDF or a signed bundle, offline.
    Unseal(seal::UnsealOptions),
    /// Print the completion script for a shell, to source or install (for
    /// bash: `undersigned completions bash > /etc/bash_completion.d/undersigned`).
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// The command line as typed. A mistake in it is said in one line, with
    /// the values accepted when there is a list of them (exit status 2);
    /// `--help` and `--version` print as clap prints them.
    pub fn from_args() -> Result<Self, CliError> {
        Self::try_parse().map_err(|e| match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => CliError::Usage(one_line(&e)),
        })
    }
}

/// A clap error in one line: its first, the arguments it lists after a colon
/// (those missing), and the values accepted.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    if message.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
            .collect();
        message = format!("{message} {}", listed.join(", "));
    }
    if let Some(ContextValue::Strings(accepted)) = e.get(ContextKind::ValidValue) {
        message = format!("{message}: one of {}", accepted.join(", "));
    }
    message
}

/// Prints the completion script for `shell` on stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "undersigned",
        &mut std::io::stdout(),
    );
}

/// Why a command failed, naming the file or value at fault. `main` prints it
/// once.
#[derive(Debug, Error)]
pub enum CliError {
    /// The options do not fit together (exit status 2, as clap's own).
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serving on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    /// A value the command refuses: a document, a slug, a bundle.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Start(#[from] StartError),
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        Self::Start(e.into())
    }
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Runs a command; `shutdown` ends `serve`.
pub async fn execute(
    command: Command,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CliError> {
    match command {
        Command::Serve => {
            let bind = |address| {
                undersigned_http::listen(address)
                    .map_err(|source| CliError::Listen { address, source })
            };
            let listeners = undersigned_http::Listeners {
                public: bind(config.listen)?,
                operator: config.operator_listen.map(bind).transpose()?,
            };
            Ok(run(config, listeners, shutdown).await?)
        }
        Command::Migrate => {
            ensure_database(&config.database_url).await?;
            migrate(&config.database_url).await?;
            Ok(())
        }
        Command::Petition { command } => petition::execute(command, &config).await,
        Command::Token { command } => token::execute(command, &config).await,
        Command::Event { command } => event::execute(command, &config).await,
        Command::Export(options) => export::export(options, &config).await,
        Command::Import(options) => import::import(options, &config).await,
        Command::Bundle { command } => bundle::execute(command),
        Command::SealKey { command } => seal::key(command),
        Command::Unseal(options) => seal::open(options).await,
        // `main` prints these before it reads the configuration, which they
        // do not need; here for a caller that does not.
        Command::Completions { shell } => {
            print_completions(shell);
            Ok(())
        }
    }
}

/// The audit entry of something an operator did here: the action the API
/// records for it, and its detail marked `"via": "command line"`.
fn audited(action: &'static str, mut detail: Value) -> AuditEntry {
    detail["via"] = "command line".into();
    AuditEntry::new(&Actor::default(), action, detail)
}

/// The petition `slug` names; `given` says how it was given (`--petition`).
async fn petition_named(store: &Store, given: &str, slug: &str) -> Result<Petition, CliError> {
    store
        .petition_by_slug(slug)
        .await?
        .ok_or_else(|| CliError::Refused(format!("{given} {slug:?}: no such petition")))
}

/// A file's bytes; its error names the file.
fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })
}

/// Writes the file `out` with `write`, into a file beside it moved to `out`
/// only once whole and on disk, so that a failure never leaves a partial
/// file under the name asked for (nor beside it).
async fn write_whole<T, E: From<std::io::Error>>(
    out: &Path,
    write: impl AsyncFnOnce(&mut tokio::fs::File) -> Result<T, E>,
) -> Result<Result<T, E>, CliError> {
    let partial = out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|source| CliError::File {
            path: partial.clone(),
            source,
        })?;
    let mut result = write(&mut file).await;
    if result.is_ok()
        && let Err(e) = async {
            file.sync_all().await?;
            tokio::fs::rename(&partial, out).await
        }
        .await
    {
        result = Err(e.into());
    }
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    Ok(result)
}

/// What is wrong with a file's content.
fn refused(path: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::Refused(format!("{}: {why}", path.display()))
}

/// The name a choice has on the command line, which is the name the API and
/// the store give it (a test checks each parses there).
fn choice_name(choice: &impl ValueEnum) -> String {
    choice
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

// The value parsers clap runs: a value they refuse is bad usage (exit status
// 2), reported by clap with the option that carried it.

fn country(value: &str) -> Result<String, String> {
    undersigned_domain::Country::parse(value)
        .map(|c| c.as_str().to_owned())
        .ok_or_else(|| "not an ISO 3166-1 alpha-2 country code, like NL".into())
}

fn time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    undersigned_domain::parse_time(value)
        .map_err(|_| "not an RFC 3339 time, like 2030-06-30T09:00:00Z".into())
}

fn future_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    match time(value)? {
        t if t > chrono::Utc::now() => Ok(t),
        _ => Err("a time in the past".into()),
    }
}

fn id(value: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(value.trim()).map_err(|_| "an id is a UUID".into())
}

fn receipt(value: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(value.trim()).map_err(|_| "a receipt is a UUID".into())
}

fn public_key(value: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or("not the base64 of a 32-byte Ed25519 public key")?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".into())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// The commands, options and arguments that `--help` would list bare.
    fn undocumented(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if arg.get_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(path.clone());
            }
            undocumented(sub, &path, missing);
        }
    }

    #[test]
    fn every_command_option_and_argument_has_a_help_text() {
        Cli::command().debug_assert();
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        undocumented(&command, "undersigned", &mut missing);
        assert!(missing.is_empty(), "without a help text: {missing:?}");
    }

    #[test]
    fn a_wrong_value_is_one_line_naming_the_values_accepted() {
        let e = Cli::try_parse_from(["undersigned", "token", "create", "--role", "owner"])
            .err()
            .unwrap();
        assert_eq!(
            super::one_line(&e),
            "invalid value 'owner' for '--role <ROLE>': one of admin, organizer, coordinator, device"
        );
        let e = Cli::try_parse_from(["undersigned", "event", "create", "--name", "Fair"])
            .err()
            .unwrap();
        let message = super::one_line(&e);
        assert!(
            message.starts_with("the following required arguments were not provided: --petition"),
            "{message}"
        );
    }
}
