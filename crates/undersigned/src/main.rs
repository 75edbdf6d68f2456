//! `undersigned`: serve, migrate, and the organizers' command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use undersigned::{Config, StartError, open_store, run};
use undersigned_domain::{NewPetition, NewPetitionInput};
use undersigned_store::{Role, StoreError, ensure_database, migrate};

#[derive(Parser)]
#[command(version, about = "Collects signatures for petitions and declarations")]
struct Cli {
    /// TOML configuration file (also UNDERSIGNED_CONFIG); UNDERSIGNED_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (creates and migrates the database when needed).
    Serve,
    /// Create the database when missing and apply migrations, then exit.
    Migrate,
    /// Manage petitions.
    Petition {
        #[command(subcommand)]
        command: PetitionCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum PetitionCommand {
    /// Create a petition, open for signing.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        goal: i64,
        /// The petition's text; the title when omitted.
        #[arg(long)]
        text_file: Option<PathBuf>,
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; prints only the token, once.
    Create {
        #[arg(long)]
        role: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("undersigned: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    match execute(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "failed");
            eprintln!("undersigned: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout carries only what a command prints for scripts.
fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn execute(command: Command, config: Config) -> Result<(), StartError> {
    match command {
        Command::Serve => {
            let listener = TcpListener::bind(config.listen).await?;
            run(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            ensure_database(&config.database_url).await?;
            migrate(&config.database_url).await?;
            Ok(())
        }
        Command::Petition {
            command:
                PetitionCommand::Create {
                    slug,
                    title,
                    goal,
                    text_file,
                    locale,
                },
        } => {
            let text = match text_file {
                Some(path) => std::fs::read_to_string(path)?,
                None => title.clone(),
            };
            let petition = NewPetition::parse(NewPetitionInput {
                slug: Some(slug),
                title: Some(title),
                text: Some(text),
                goal: Some(goal),
                locale: Some(locale),
                ..Default::default()
            })
            .map_err(|errors| {
                let list: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.code))
                    .collect();
                StartError::Store(StoreError::Config(list.join(", ")))
            })?;
            let (store, _) = open_store(&config).await?;
            match store.create_petition(&petition).await {
                Ok(p) => {
                    println!("{}", p.slug);
                    Ok(())
                }
                Err(StoreError::Conflict) => Err(StoreError::Config(format!(
                    "a petition with slug {} already exists",
                    petition.slug.as_str()
                ))
                .into()),
                Err(e) => Err(e.into()),
            }
        }
        Command::Token {
            command: TokenCommand::Create { role },
        } => {
            // Other roles are scoped to petitions and countries, which tokens cannot carry yet.
            if Role::parse(&role) != Some(Role::Admin) {
                return Err(StoreError::Config(format!(
                    "role {role:?}: only admin tokens can be issued"
                ))
                .into());
            }
            let (store, _) = open_store(&config).await?;
            let (_, token) = store.create_token(Role::Admin).await?;
            println!("{token}");
            Ok(())
        }
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
