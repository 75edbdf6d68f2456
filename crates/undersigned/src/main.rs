//! `undersigned`: serve, migrate, and the organizers' command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use thiserror::Error;
use tracing_subscriber::EnvFilter;
use undersigned::{Config, StartError, offline_ingest, open_export_key, open_store, run};
use undersigned_export::{ExportRequest, Proof, check_proof, prove, verify_bundle, write_export};
use undersigned_http::{ApiError, new_petition_from};
use undersigned_ingest::{LineOutcome, read_paper_forms};
use undersigned_store::{Actor, AuditEntry, NewToken, Role, StoreError, ensure_database, migrate};

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
    /// Export a petition's signatures to a file, as `GET
    /// /v1/petitions/{slug}/export` does (recorded in the audit trail).
    Export(ExportOptions),
    /// Import typed-in paper forms from a CSV (channel `paper`), as `POST
    /// /v1/petitions/{slug}/signatures:import` does; prints what became of
    /// each line (recorded in the audit trail).
    Import(ImportOptions),
    /// Check signed bundles and inclusion proofs, offline.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
}

#[derive(clap::Args)]
struct ExportOptions {
    /// The petition's slug.
    #[arg(long)]
    petition: String,
    /// csv, jsonl, pdf or bundle.
    #[arg(long, default_value = "csv")]
    format: String,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// Only signatures from this country (ISO code); repeatable.
    #[arg(long = "country")]
    countries: Vec<String>,
    /// Signed at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Signed before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// web, event or paper.
    #[arg(long)]
    channel: Option<String>,
    /// person or organization.
    #[arg(long)]
    signer_kind: Option<String>,
    /// counted (the default), invalidated, shadowed or all.
    #[arg(long)]
    status: Option<String>,
    /// Comma-separated: receipt, full_name, organization, signer_kind, city,
    /// postal_code, country, signed_at, channel, email.
    #[arg(long)]
    columns: Option<String>,
    /// Which of the petition's texts the PDF shows (its default otherwise).
    #[arg(long)]
    locale: Option<String>,
}

#[derive(clap::Args)]
struct ImportOptions {
    /// The slug of the petition the forms were signed for.
    #[arg(long)]
    petition: String,
    /// UTF-8 CSV with a header line naming its columns: full_name, email,
    /// country, postal_code, city, signer_kind, organization,
    /// consent_updates, locale, signed_at.
    #[arg(long)]
    file: PathBuf,
    /// Only check, and say what would become of each line.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Check a bundle: its signature, every file's SHA-256, the counts and the
    /// Merkle root; says what is wrong, if anything.
    Verify {
        /// The bundle: a zip from `GET /v1/petitions/{slug}/export?format=bundle`.
        file: PathBuf,
        /// The campaign's public key (base64, from GET /v1/export-key); without
        /// it, the key the manifest names is used and reported.
        #[arg(long, value_parser = public_key)]
        key: Option<ed25519_dalek::VerifyingKey>,
    },
    /// Print the inclusion proof (JSON) of the signature with this receipt.
    Prove {
        /// The bundle holding the signature.
        file: PathBuf,
        /// The receipt the signer was given when signing (a UUID).
        #[arg(long, value_parser = receipt)]
        receipt: uuid::Uuid,
    },
    /// Check an inclusion proof against a delivered bundle's Merkle root.
    CheckProof {
        /// The proof, as `bundle prove` prints it (JSON).
        proof: PathBuf,
        /// The signer's receipt (a UUID): the proof must be of its row.
        #[arg(long, value_parser = receipt)]
        receipt: uuid::Uuid,
        /// The `merkle_root` of the delivered bundle's manifest.
        #[arg(long)]
        root: String,
    },
}

#[derive(Subcommand)]
enum PetitionCommand {
    /// Create a petition (open for signing unless --status says otherwise);
    /// prints its slug. Takes the document `POST /v1/petitions` takes, from
    /// --from, and the options given override its fields.
    Create(PetitionCreate),
}

#[derive(clap::Args)]
struct PetitionCreate {
    /// A JSON file with the petition as `POST /v1/petitions` takes it: texts
    /// in several locales (`translations`), `targets`, and every other field.
    #[arg(long)]
    from: Option<PathBuf>,
    /// The petition's name in its URLs (`/v1/petitions/{slug}`): lower-case
    /// letters, digits and hyphens.
    #[arg(long)]
    slug: Option<String>,
    /// The title, in the default locale.
    #[arg(long)]
    title: Option<String>,
    /// A file holding the petition's text, in the default locale; the title
    /// when neither this nor --from gives one.
    #[arg(long)]
    text_file: Option<PathBuf>,
    /// The short call to action forms show.
    #[arg(long)]
    ask: Option<String>,
    /// How many signatures the campaign aims for.
    #[arg(long)]
    goal: Option<i64>,
    /// The default locale (`en` when neither this nor --from gives one).
    #[arg(long)]
    locale: Option<String>,
    /// draft, open or closed.
    #[arg(long)]
    status: Option<String>,
    /// When signing opens (RFC 3339).
    #[arg(long)]
    opens_at: Option<String>,
    /// When signing closes (RFC 3339).
    #[arg(long)]
    closes_at: Option<String>,
    /// A signer field the petition requires: postal_code or city.
    #[arg(long = "require")]
    required_fields: Vec<String>,
    /// Only people may sign, not organizations.
    #[arg(long)]
    no_organizations: bool,
}

impl PetitionCreate {
    /// The document the options describe: --from's, with the options set over it.
    fn document(self) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
        use serde_json::Value;
        let mut doc = match &self.from {
            None => serde_json::Map::new(),
            Some(path) => match serde_json::from_slice(&read_file(path)?) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(refused(path, "not a JSON object")),
                Err(e) => return Err(refused(path, format!("not JSON: {e}"))),
            },
        };
        let mut set = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                doc.insert(name.to_owned(), value);
            }
        };
        let text = match &self.text_file {
            Some(path) => Some(
                String::from_utf8(read_file(path)?).map_err(|_| refused(path, "not UTF-8 text"))?,
            ),
            None => None,
        };
        set("slug", self.slug.map(Value::from));
        set("title", self.title.map(Value::from));
        set("text", text.map(Value::from));
        set("ask", self.ask.map(Value::from));
        set("goal", self.goal.map(Value::from));
        set("locale", self.locale.map(Value::from));
        set("status", self.status.map(Value::from));
        set("opens_at", self.opens_at.map(Value::from));
        set("closes_at", self.closes_at.map(Value::from));
        if !self.required_fields.is_empty() {
            set("required_fields", Some(Value::from(self.required_fields)));
        }
        if self.no_organizations {
            set("organizations_may_sign", Some(Value::Bool(false)));
        }
        if !doc.contains_key("text")
            && let Some(title) = doc.get("title").cloned()
        {
            doc.insert("text".into(), title);
        }
        Ok(doc)
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; prints only the token, once.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: RoleName,
        /// A petition the token may manage (organizer, device) or read (coordinator, one).
        #[arg(long = "petition")]
        petitions: Vec<String>,
        /// A country whose signatures a coordinator may see (ISO code).
        #[arg(long = "country", value_parser = country)]
        countries: Vec<String>,
        /// When the token stops working (RFC 3339, in the future).
        #[arg(long, value_parser = future_time)]
        expires: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// The roles a token can have, as the command line names them.
#[derive(Clone, Copy, ValueEnum)]
enum RoleName {
    /// Everything: petitions, tokens, block rules, the audit trail.
    Admin,
    /// Its petitions: change them, read their signatures and signals.
    Organizer,
    /// One petition and some countries: reading those countries' signatures.
    Coordinator,
    /// Its petitions: signing without a captcha (event tablets).
    Device,
}

impl From<RoleName> for Role {
    fn from(name: RoleName) -> Self {
        match name {
            RoleName::Admin => Role::Admin,
            RoleName::Organizer => Role::Organizer,
            RoleName::Coordinator => Role::Coordinator,
            RoleName::Device => Role::Device,
        }
    }
}

// The value parsers clap runs: a value they refuse is bad usage (exit status
// 2), reported by clap with the option that carried it.

fn country(value: &str) -> Result<String, String> {
    undersigned_domain::Country::parse(value)
        .map(|c| c.as_str().to_owned())
        .ok_or_else(|| "not an ISO 3166-1 alpha-2 country code, like NL".into())
}

fn future_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(t) if t > chrono::Utc::now() => Ok(t.with_timezone(&chrono::Utc)),
        Ok(_) => Err("a time in the past".into()),
        Err(e) => Err(format!(
            "not an RFC 3339 time, like 2030-06-30T00:00:00Z ({e})"
        )),
    }
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

/// Why a command failed, naming the file or value at fault. `main` prints it
/// once.
#[derive(Debug, Error)]
enum CliError {
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
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// A file's bytes; its error names the file.
fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })
}

/// What is wrong with a file's content.
fn refused(path: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::Refused(format!("{}: {why}", path.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("undersigned: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config);
    let serving = matches!(cli.command, Command::Serve);
    match execute(cli.command, config).await {
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
fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        undersigned::LogFormat::Json => builder.json().init(),
        undersigned::LogFormat::Text => builder.init(),
    }
}

async fn execute(command: Command, config: Config) -> Result<(), CliError> {
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
            Ok(run(config, listeners, shutdown_signal()).await?)
        }
        Command::Export(options) => export(options, &config).await,
        Command::Import(options) => import(options, &config).await,
        Command::Bundle { command } => bundle(command),
        Command::Migrate => {
            ensure_database(&config.database_url).await?;
            migrate(&config.database_url).await?;
            Ok(())
        }
        Command::Petition {
            command: PetitionCommand::Create(options),
        } => create_petition(options, &config).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    petitions,
                    countries,
                    expires,
                },
        } => {
            let role = Role::from(role);
            let scope_ok = match role {
                Role::Admin => petitions.is_empty() && countries.is_empty(),
                Role::Organizer | Role::Device => !petitions.is_empty() && countries.is_empty(),
                Role::Coordinator => petitions.len() == 1 && !countries.is_empty(),
            };
            if !scope_ok {
                return Err(CliError::Usage(
                    "token create: admin takes no --petition or --country; organizer and \
                     device one --petition or more; coordinator exactly one --petition and \
                     one --country or more"
                        .into(),
                ));
            }
            let (store, _) = open_store(&config).await?;
            let mut petition_ids = Vec::new();
            for slug in &petitions {
                petition_ids.push(petition_named(&store, slug).await?.id);
            }
            let audit = AuditEntry::new(
                &Actor::default(),
                "token.create",
                serde_json::json!({"role": role.as_str(), "petitions": petitions,
                                   "countries": countries, "via": "command line"}),
            );
            let new = NewToken {
                role,
                petition_ids,
                countries,
                expires_at: expires,
            };
            let (_, token) = store.create_token(&new, Some(audit)).await?;
            println!("{token}");
            Ok(())
        }
    }
}

/// `undersigned petition create`: checked by the code `POST /v1/petitions`
/// uses, and audited.
async fn create_petition(options: PetitionCreate, config: &Config) -> Result<(), CliError> {
    let petition = new_petition_from(options.document()?).map_err(|e| {
        CliError::Refused(match e {
            ApiError::Invalid(errors) => format!(
                "the petition is not valid: {}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.code))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ApiError::Malformed(why) => format!("the petition is not valid: {why}"),
            other => format!("the petition is not valid: {other:?}"),
        })
    })?;
    let (store, _) = open_store(config).await?;
    let audit = AuditEntry::new(
        &Actor::default(),
        "petition.create",
        serde_json::json!({"slug": petition.slug, "via": "command line"}),
    );
    match store.create_petition(&petition, audit).await {
        Ok(p) => {
            println!("{}", p.slug);
            Ok(())
        }
        Err(StoreError::Conflict) => Err(CliError::Refused(format!(
            "--slug {}: a petition with this slug already exists",
            petition.slug.as_str()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The petition `--petition` names.
async fn petition_named(
    store: &undersigned_store::Store,
    slug: &str,
) -> Result<undersigned_store::Petition, CliError> {
    store
        .petition_by_slug(slug)
        .await?
        .ok_or_else(|| CliError::Refused(format!("--petition {slug:?}: no such petition")))
}

/// `undersigned import`: paper forms through the same checks and writers as
/// the admin endpoint; one line of the report per line of the file
/// (`line<TAB>status<TAB>field:code …`), then the totals.
async fn import(options: ImportOptions, config: &Config) -> Result<(), CliError> {
    let file = read_file(&options.file)?;
    let (store, ingest) = offline_ingest(config).await?;
    let petition = petition_named(&store, &options.petition).await?;
    if petition.status != undersigned_domain::PetitionStatus::Open {
        return Err(CliError::Refused(format!(
            "--petition {:?}: the petition is {}, not open",
            options.petition,
            petition.status.as_str()
        )));
    }
    let lines = read_paper_forms(&file, &petition, chrono::Utc::now())
        .map_err(|e| refused(&options.file, e))?;
    let report = ingest
        .import(&petition, lines, options.dry_run)
        .await
        .map_err(|e| refused(&options.file, format!("not imported: {e}")))?;
    ingest.drain().await;
    let [accepted, duplicate, refused] = report.tally();
    store
        .audit(
            &AuditEntry::new(
                &Actor::default(),
                "signatures.import",
                serde_json::json!({"dry_run": options.dry_run, "lines": report.lines.len(),
                                   "accepted": accepted, "duplicate": duplicate,
                                   "invalid": refused, "via": "command line"}),
            )
            .about(petition.id),
        )
        .await?;
    for (line, outcome) in &report.lines {
        let (status, reasons) = match outcome {
            LineOutcome::Accepted => ("accepted", String::new()),
            LineOutcome::Duplicate => ("duplicate", String::new()),
            LineOutcome::Invalid(errors) => (
                "invalid",
                errors
                    .iter()
                    .map(|e| format!("{}:{}", e.field, e.code))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        };
        println!("{line}\t{status}\t{reasons}");
    }
    println!(
        "{}{accepted} accepted, {duplicate} duplicate, {refused} invalid",
        if options.dry_run { "dry run: " } else { "" }
    );
    Ok(())
}

/// `undersigned export`: the same checks and audit entries as the HTTP export,
/// by an operator on the service's own machine (who may read e-mails).
async fn export(options: ExportOptions, config: &Config) -> Result<(), CliError> {
    let mut pairs: Vec<(&str, &str)> = vec![("format", options.format.as_str())];
    pairs.extend(options.countries.iter().map(|c| ("country", c.as_str())));
    for (name, value) in [
        ("since", &options.since),
        ("until", &options.until),
        ("channel", &options.channel),
        ("signer_kind", &options.signer_kind),
        ("status", &options.status),
        ("columns", &options.columns),
        ("locale", &options.locale),
    ] {
        if let Some(v) = value {
            pairs.push((name, v));
        }
    }
    let option = |field: &str, code: &str| format!("--{}: {code}", field.replace('_', "-"));
    let mut request = ExportRequest::parse(pairs).map_err(|errors| {
        CliError::Usage(
            errors
                .iter()
                .map(|e| option(&e.field, e.code))
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let (store, _) = open_store(config).await?;
    let key = open_export_key(config, &store).await?;
    let petition = petition_named(&store, &options.petition).await?;
    request
        .bind(&petition)
        .map_err(|e| CliError::Refused(option(&e.field, e.code)))?;
    let job = request.job(uuid::Uuid::now_v7(), chrono::Utc::now(), &petition, &key);
    let actor = Actor::default();
    let mut start = job.started();
    start["via"] = "command line".into();
    store
        .audit(&AuditEntry::new(&actor, "export", start).about(petition.id))
        .await?;
    // Written beside the destination and moved there only when complete, so a
    // failed export never leaves a partial file under the name asked for.
    let partial = options.out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|source| CliError::File {
            path: partial.clone(),
            source,
        })?;
    let mut result = write_export(&store, &job, &mut file).await;
    if result.is_ok()
        && let Err(e) = async {
            file.sync_all().await?;
            tokio::fs::rename(&partial, &options.out).await
        }
        .await
    {
        result = Err(e.into());
    }
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    let finish = job.finished(&result);
    store
        .audit(&AuditEntry::new(&actor, "export.finish", finish).about(petition.id))
        .await?;
    let summary = result.map_err(|e| refused(&options.out, e))?;
    println!(
        "{}",
        serde_json::json!({
            "file": options.out, "rows": summary.rows, "by_country": summary.by_country,
            "sha256": summary.sha256, "merkle_root": summary.merkle_root,
        })
    );
    Ok(())
}

/// `undersigned bundle …`: offline, without the database.
fn bundle(command: BundleCommand) -> Result<(), CliError> {
    match command {
        BundleCommand::Verify { file, key } => {
            match verify_bundle(&read_file(&file)?, key.as_ref()) {
                Ok(check) => {
                    println!(
                        "ok: {} signatures of {} ({}), Merkle root {}, signed by {}{}",
                        check.row_count,
                        check.petition,
                        check.files.join(", "),
                        check.merkle_root,
                        check.public_key,
                        if check.key_trusted {
                            " (the trusted key)"
                        } else {
                            " (not checked against a trusted key: pass --key)"
                        }
                    );
                    Ok(())
                }
                Err(problems) => Err(refused(
                    &file,
                    format!("not intact: {}", problems.join("; ")),
                )),
            }
        }
        BundleCommand::Prove { file, receipt } => {
            let proof = prove(&read_file(&file)?, &receipt).map_err(|e| refused(&file, e))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&proof).unwrap_or_default()
            );
            Ok(())
        }
        BundleCommand::CheckProof {
            proof: path,
            receipt,
            root,
        } => {
            let proof: Proof = serde_json::from_slice(&read_file(&path)?)
                .map_err(|e| refused(&path, format!("not a proof: {e}")))?;
            check_proof(&proof, &receipt, &root).map_err(|e| refused(&path, e))?;
            println!(
                "ok: signature {} of {} is in the bundle with root {root}",
                proof.leaf_index + 1,
                proof.tree_size
            );
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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
}
