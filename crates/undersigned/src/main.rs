//! `undersigned`: serve, migrate, and the organizers' command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
        file: PathBuf,
        /// The campaign's public key (base64, from GET /v1/export-key); without
        /// it, the key the manifest names is used and reported.
        #[arg(long)]
        key: Option<String>,
    },
    /// Print the inclusion proof (JSON) of the signature with this receipt.
    Prove {
        file: PathBuf,
        #[arg(long)]
        receipt: String,
    },
    /// Check an inclusion proof against a delivered bundle's Merkle root.
    CheckProof {
        proof: PathBuf,
        #[arg(long)]
        receipt: String,
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
    fn document(self) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        use serde_json::Value;
        let mut doc = match &self.from {
            None => serde_json::Map::new(),
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("--from {path:?}: {e}"))?;
                match serde_json::from_slice(&bytes) {
                    Ok(Value::Object(map)) => map,
                    Ok(_) => return Err(format!("--from {path:?}: not a JSON object")),
                    Err(e) => return Err(format!("--from {path:?}: {e}")),
                }
            }
        };
        let mut set = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                doc.insert(name.to_owned(), value);
            }
        };
        let text = match &self.text_file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| format!("--text-file {path:?}: {e}"))?,
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
        /// admin, organizer, coordinator or device.
        #[arg(long)]
        role: String,
        /// A petition the token may manage (organizer, device) or read (coordinator, one).
        #[arg(long = "petition")]
        petitions: Vec<String>,
        /// A country whose signatures a coordinator may see (ISO code).
        #[arg(long = "country")]
        countries: Vec<String>,
        /// When the token stops working (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
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
            let listeners = undersigned::bind(&config)?;
            run(config, listeners, shutdown_signal()).await
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
        } => {
            let invalid = |what: String| StartError::Store(StoreError::Config(what));
            let petition =
                new_petition_from(options.document().map_err(invalid)?).map_err(|e| match e {
                    ApiError::Invalid(errors) => invalid(
                        errors
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.code))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    other => invalid(format!("{other:?}")),
                })?;
            let (store, _) = open_store(&config).await?;
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
                Err(StoreError::Conflict) => Err(invalid(format!(
                    "a petition with slug {} already exists",
                    petition.slug.as_str()
                ))),
                Err(e) => Err(e.into()),
            }
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    petitions,
                    countries,
                    expires,
                },
        } => {
            let invalid =
                |what: String| -> Result<(), StartError> { Err(StoreError::Config(what).into()) };
            let Some(role) = Role::parse(&role) else {
                return invalid(format!(
                    "--role {role:?}: admin, organizer, coordinator or device"
                ));
            };
            let expires_at = match expires.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) if t > chrono::Utc::now() => Some(t.with_timezone(&chrono::Utc)),
                Some(_) => return invalid("--expires: an RFC 3339 time in the future".into()),
            };
            let countries = countries
                .iter()
                .map(|c| undersigned_domain::Country::parse(c).map(|c| c.as_str().to_owned()))
                .collect::<Option<Vec<_>>>();
            let Some(countries) = countries else {
                return invalid("--country: ISO 3166-1 alpha-2 codes".into());
            };
            let (store, _) = open_store(&config).await?;
            let mut petition_ids = Vec::new();
            for slug in &petitions {
                match store.petition_by_slug(slug).await? {
                    Some(p) => petition_ids.push(p.id),
                    None => return invalid(format!("--petition {slug:?}: no such petition")),
                }
            }
            let scope_ok = match role {
                Role::Admin => petition_ids.is_empty() && countries.is_empty(),
                Role::Organizer | Role::Device => !petition_ids.is_empty() && countries.is_empty(),
                Role::Coordinator => petition_ids.len() == 1 && !countries.is_empty(),
            };
            if !scope_ok {
                return invalid(
                    "scope: admin takes no --petition or --country; organizer and device one \
                     --petition or more; coordinator exactly one --petition and one --country or more"
                        .into(),
                );
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
                expires_at,
            };
            let (_, token) = store.create_token(&new, Some(audit)).await?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The petition `--petition` names.
async fn petition_named(
    store: &undersigned_store::Store,
    slug: &str,
) -> Result<undersigned_store::Petition, StartError> {
    store.petition_by_slug(slug).await?.ok_or_else(|| {
        StartError::Store(StoreError::Config(format!(
            "--petition {slug:?}: no such petition"
        )))
    })
}

/// `undersigned import`: paper forms through the same checks and writers as
/// the admin endpoint; one line of the report per line of the file
/// (`line<TAB>status<TAB>field:code …`), then the totals.
async fn import(options: ImportOptions, config: &Config) -> Result<(), StartError> {
    let invalid = |what: String| StartError::Store(StoreError::Config(what));
    let file = tokio::fs::read(&options.file).await?;
    let (store, ingest) = offline_ingest(config).await?;
    let petition = petition_named(&store, &options.petition).await?;
    if petition.status != undersigned_domain::PetitionStatus::Open {
        return Err(invalid(format!(
            "--petition {:?}: the petition is {}, not open",
            options.petition,
            petition.status.as_str()
        )));
    }
    let lines = read_paper_forms(&file, &petition, chrono::Utc::now())
        .map_err(|e| invalid(format!("--file: {e}")))?;
    let report = ingest
        .import(&petition, lines, options.dry_run)
        .await
        .map_err(|e| invalid(format!("import: {e}")))?;
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
async fn export(options: ExportOptions, config: &Config) -> Result<(), StartError> {
    let invalid = |what: String| StartError::Store(StoreError::Config(what));
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
    let mut request = ExportRequest::parse(pairs).map_err(|errors| {
        invalid(
            errors
                .iter()
                .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.code))
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let (store, _) = open_store(config).await?;
    let key = open_export_key(config, &store).await?;
    let petition = petition_named(&store, &options.petition).await?;
    request
        .bind(&petition)
        .map_err(|e| invalid(format!("--{}: {}", e.field, e.code)))?;
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
    let mut file = tokio::fs::File::create(&partial).await?;
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
    let summary = result.map_err(|e| invalid(e.to_string()))?;
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
fn bundle(command: BundleCommand) -> Result<(), StartError> {
    let fail = |what: String| StartError::Store(StoreError::Config(what));
    let receipt =
        |r: &str| uuid::Uuid::parse_str(r.trim()).map_err(|_| fail("--receipt: not a UUID".into()));
    match command {
        BundleCommand::Verify { file, key } => {
            let trusted = match key {
                None => None,
                Some(k) => {
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(k.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            fail("--key: base64 of a 32-byte Ed25519 public key".into())
                        })?;
                    Some(
                        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                            .map_err(|_| fail("--key: not an Ed25519 public key".into()))?,
                    )
                }
            };
            let bytes = std::fs::read(&file)?;
            match verify_bundle(&bytes, trusted.as_ref()) {
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
                Err(problems) => Err(fail(format!(
                    "{} is not intact: {}",
                    file.display(),
                    problems.join("; ")
                ))),
            }
        }
        BundleCommand::Prove { file, receipt: r } => {
            let proof = prove(&std::fs::read(&file)?, &receipt(&r)?).map_err(fail)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&proof).unwrap_or_default()
            );
            Ok(())
        }
        BundleCommand::CheckProof {
            proof,
            receipt: r,
            root,
        } => {
            let proof: Proof = serde_json::from_slice(&std::fs::read(&proof)?)
                .map_err(|e| fail(format!("not a proof: {e}")))?;
            check_proof(&proof, &receipt(&r)?, &root).map_err(fail)?;
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
