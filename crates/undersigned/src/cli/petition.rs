//! `undersigned petition …`: create, list, show, close and open petitions,
//! with the checks, store calls and audit entries of `POST` and `PATCH
//! /v1/petitions`, and the counts the API's counter shows.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};
use undersigned::{Config, open_store};
use undersigned_domain::PetitionStatus;
use undersigned_http::{ApiError, new_petition_from};
use undersigned_ingest::Counter;
use undersigned_store::{PetitionUpdate, Store, StoreError};

use super::listing::{self, time};
use super::{CliError, audited, choice_name, petition_named, read_file, refused};

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum PetitionCommand {
    /// Create a petition (open for signing unless --status says otherwise);
    /// prints its slug. Takes the document `POST /v1/petitions` takes, from
    /// --from, and the options given override its fields.
    Create(PetitionCreate),
    /// List every petition, oldest first: slug, status, count, goal, created.
    List {
        /// One JSON object per line, for scripts, instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Show a petition and its counts by country.
    Show {
        /// The petition's slug.
        slug: String,
        /// One JSON object, for scripts, instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Stop taking signatures (status `closed`), as `PATCH
    /// /v1/petitions/{slug}` with `{"status":"closed"}` does; a running
    /// service refuses signatures within two seconds.
    Close {
        /// The petition's slug.
        slug: String,
    },
    /// Take signatures (status `open`), as `PATCH /v1/petitions/{slug}`
    /// with `{"status":"open"}` does; its opening and closing times still hold.
    Open {
        /// The petition's slug.
        slug: String,
    },
}

/// A petition's status, as the command line names it.
#[derive(Clone, Copy, ValueEnum)]
pub enum StatusName {
    /// Being written: not shown to signers, not taking signatures.
    Draft,
    /// Taking signatures (between its opening and closing times, if set).
    Open,
    /// No longer taking signatures.
    Closed,
}

impl From<StatusName> for PetitionStatus {
    fn from(name: StatusName) -> Self {
        match name {
            StatusName::Draft => Self::Draft,
            StatusName::Open => Self::Open,
            StatusName::Closed => Self::Closed,
        }
    }
}

#[derive(clap::Args)]
pub struct PetitionCreate {
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
    /// Whether it takes signatures (`open` when neither this nor --from says).
    #[arg(long, value_enum)]
    status: Option<StatusName>,
    /// When signing opens (RFC 3339).
    #[arg(long)]
    opens_at: Option<String>,
    /// When signing closes (RFC 3339).
    #[arg(long)]
    closes_at: Option<String>,
    /// A signer field the petition requires: postal_code or city;
    /// repeatable. Checked with the petition's other fields, all reported at once.
    #[arg(long = "require")]
    required_fields: Vec<String>,
    /// Only people may sign, not organizations.
    #[arg(long)]
    no_organizations: bool,
    /// Whether a web signature counts once its signer follows the link
    /// emailed to them (`email`, when neither this nor --from says), or at
    /// once (`none`).
    #[arg(long, value_enum)]
    verification: Option<VerificationName>,
}

/// How web signatures are verified, as the command line names it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum VerificationName {
    /// Pending until the signer confirms by the emailed link.
    Email,
    /// Counted at once.
    None,
}

impl PetitionCreate {
    /// The document the options describe: --from's, with the options set over it.
    fn document(self) -> Result<Map<String, Value>, CliError> {
        let mut doc = match &self.from {
            None => Map::new(),
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
        set("status", self.status.map(|s| choice_name(&s).into()));
        set("opens_at", self.opens_at.map(Value::from));
        set("closes_at", self.closes_at.map(Value::from));
        if !self.required_fields.is_empty() {
            set("required_fields", Some(Value::from(self.required_fields)));
        }
        set(
            "verification",
            self.verification.map(|v| choice_name(&v).into()),
        );
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

pub async fn execute(command: PetitionCommand, config: &Config) -> Result<(), CliError> {
    match command {
        PetitionCommand::Create(options) => create(options, config).await,
        PetitionCommand::List { json } => list(config, json).await,
        PetitionCommand::Show { slug, json } => show(config, &slug, json).await,
        PetitionCommand::Close { slug } => set_status(config, &slug, PetitionStatus::Closed).await,
        PetitionCommand::Open { slug } => set_status(config, &slug, PetitionStatus::Open).await,
    }
}

/// `petition create`: checked by the code `POST /v1/petitions` uses, and audited.
async fn create(options: PetitionCreate, config: &Config) -> Result<(), CliError> {
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
    let audit = audited("petition.create", json!({"slug": petition.slug}));
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

/// Every petition's counts as the API's counter shows them, read once from
/// the counts Postgres maintains.
pub(super) async fn counts(store: &Store) -> Result<Counter, CliError> {
    let counter = Counter::default();
    counter.merge_all(&store.count_cells().await?, &store.event_cells().await?);
    Ok(counter)
}

/// `petition list`.
async fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let counter = counts(&store).await?;
    let rows: Vec<Value> = store
        .petitions()
        .await?
        .iter()
        .map(|p| {
            json!({
                "slug": p.slug,
                "status": p.status.as_str(),
                "count": counter.view(p.id).total,
                "goal": p.goal,
                "created_at": time(p.created_at),
            })
        })
        .collect();
    listing::print(
        &["slug", "status", "count", "goal", "created_at"],
        &rows,
        json,
    );
    Ok(())
}

/// `petition show SLUG`: the petition as its organizers see it, in its
/// default locale, then its counts by country.
async fn show(config: &Config, slug: &str, json: bool) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let p = petition_named(&store, "petition", slug).await?;
    let view = counts(&store).await?.view(p.id);
    let w = &p.wordings;
    let fields = [
        ("slug", json!(p.slug)),
        ("title", json!(w.default.title)),
        ("status", json!(p.status.as_str())),
        ("locales", json!(w.locales())),
        ("goal", json!(p.goal)),
        ("count", json!(view.total)),
        ("people", json!(view.people)),
        ("organizations", json!(view.organizations)),
        ("opens_at", listing::maybe_time(p.window.opens_at)),
        ("closes_at", listing::maybe_time(p.window.closes_at)),
        ("created_at", time(p.created_at)),
    ];
    if json {
        let mut fields = fields.to_vec();
        fields.push(("by_country", json!(view.by_country)));
        listing::print_fields(&fields, true);
        return Ok(());
    }
    listing::print_fields(&fields, false);
    println!();
    let rows: Vec<Value> = view
        .by_country
        .iter()
        .map(|(country, count)| json!({"country": country.as_str(), "count": count}))
        .collect();
    listing::print(&["country", "count"], &rows, false);
    Ok(())
}

/// `petition close` and `petition open`: the change `PATCH` makes, under
/// the same row lock, with the same audit entry.
async fn set_status(config: &Config, slug: &str, status: PetitionStatus) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let audit = audited("petition.update", json!({"fields": ["status"]}));
    let updated = store
        .update_petition(slug, audit, |current| {
            let mut next = PetitionUpdate::from(current);
            next.status = status;
            Ok::<_, StoreError>(next)
        })
        .await?
        .ok_or_else(|| CliError::Refused(format!("petition {slug:?}: no such petition")))?;
    println!("{} {}", updated.slug, updated.status.as_str());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use undersigned_domain::PetitionStatus;

    use super::StatusName;
    use crate::cli::choice_name;

    #[test]
    fn the_command_line_names_statuses_as_the_api_does() {
        for s in StatusName::value_variants() {
            assert_eq!(
                PetitionStatus::parse(&choice_name(s)),
                Some(PetitionStatus::from(*s))
            );
        }
    }
}
