//! `undersigned event …`: street events and their tablets' enrollment codes,
//! with the checks, store calls and audit entries of `POST
//! /v1/petitions/{slug}/events` and `POST /v1/events/{id}/enrollment-codes`.

use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use serde_json::{Value, json};
use undersigned::{Config, open_store};
use undersigned_domain::Text;
use undersigned_store::{DEVICE_GRACE, NewEvent};

use super::listing::{self, time};
use super::petition::counts;
use super::{CliError, audited, country, id, petition_named};

/// How long an enrollment code can be spent: the API's lifetime for its codes.
const CODE_LIFETIME: Duration = Duration::hours(24);

#[derive(Subcommand)]
pub enum EventCommand {
    /// Create a street event for a petition; prints its id.
    Create(EventCreate),
    /// List a petition's events, with the signatures their tablets collected.
    List {
        /// The slug of the petition the events collect for.
        #[arg(long)]
        petition: String,
        /// One JSON object per line, for scripts, instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time code a tablet enrolls with (`POST /v1/devices`);
    /// it can be spent for 24 hours.
    Code {
        /// The event's id, as `event create` printed it.
        #[arg(value_parser = id)]
        event: uuid::Uuid,
    },
}

#[derive(clap::Args)]
pub struct EventCreate {
    /// The slug of the petition the event collects signatures for.
    #[arg(long)]
    petition: String,
    /// What the event is called, as tablets show it.
    #[arg(long)]
    name: String,
    /// Where it takes place.
    #[arg(long)]
    place: Option<String>,
    /// The country it takes place in (ISO code).
    #[arg(long, value_parser = country)]
    country: String,
    /// When it starts (RFC 3339).
    #[arg(long, value_parser = super::time)]
    starts_at: DateTime<Utc>,
    /// When it ends (RFC 3339): after it starts, and not past.
    #[arg(long, value_parser = super::time)]
    ends_at: DateTime<Utc>,
}

pub async fn execute(command: EventCommand, config: &Config) -> Result<(), CliError> {
    match command {
        EventCommand::Create(options) => create(options, config).await,
        EventCommand::List { petition, json } => list(config, &petition, json).await,
        EventCommand::Code { event } => code(config, event).await,
    }
}

/// A text the API takes in a field of at most 200 characters.
fn text(option: &str, value: &str) -> Result<String, CliError> {
    Text::parse(value, 200)
        .map(Text::into_string)
        .map_err(|code| CliError::Usage(format!("{option}: {code}")))
}

async fn create(options: EventCreate, config: &Config) -> Result<(), CliError> {
    let name = text("--name", &options.name)?;
    let place = options
        .place
        .as_deref()
        .map(|p| text("--place", p))
        .transpose()?;
    if options.ends_at <= options.starts_at {
        return Err(CliError::Usage("--ends-at: not after --starts-at".into()));
    }
    if options.ends_at <= Utc::now() {
        // Over already: nothing is left to collect at it.
        return Err(CliError::Usage("--ends-at: past".into()));
    }
    let (store, _) = open_store(config).await?;
    let petition = petition_named(&store, "--petition", &options.petition).await?;
    let new = NewEvent {
        petition_id: petition.id,
        name,
        place,
        country: Some(options.country),
        starts_at: options.starts_at,
        ends_at: options.ends_at,
    };
    let audit = audited(
        "event.create",
        json!({"name": new.name, "country": new.country, "starts_at": new.starts_at,
               "ends_at": new.ends_at}),
    )
    .about(petition.id);
    let event = store.create_event(&new, audit).await?;
    println!("{}", event.id);
    Ok(())
}

/// `event list`: what `GET /v1/petitions/{slug}/events` answers, with each
/// event's tally.
async fn list(config: &Config, slug: &str, json: bool) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let petition = petition_named(&store, "--petition", slug).await?;
    let tallies = counts(&store).await?.view(petition.id);
    let rows: Vec<Value> = store
        .events(petition.id)
        .await?
        .iter()
        .map(|e| {
            let d = &e.details;
            json!({
                "id": e.id,
                "name": d.name,
                "place": d.place,
                "country": d.country,
                "starts_at": time(d.starts_at),
                "ends_at": time(d.ends_at),
                "signatures": tallies.by_event.get(&e.id).copied().unwrap_or(0),
            })
        })
        .collect();
    listing::print(
        &[
            "id",
            "starts_at",
            "ends_at",
            "country",
            "signatures",
            "name",
            "place",
        ],
        &rows,
        json,
    );
    Ok(())
}

/// `event code`: one enrollment code, shown this once.
async fn code(config: &Config, id: uuid::Uuid) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let event = store
        .event(id)
        .await?
        .ok_or_else(|| CliError::Refused(format!("event {id}: no such event")))?;
    // A tablet's token lasts until a day after its event: past that, a code
    // would enroll a tablet that can do nothing.
    if event.details.ends_at + DEVICE_GRACE <= Utc::now() {
        return Err(CliError::Refused(format!(
            "event {id}: over, and its tablets' time with it"
        )));
    }
    let expires_at = Utc::now() + CODE_LIFETIME;
    let audit = audited(
        "event.enrollment_code",
        json!({"event": event.id, "expires_at": expires_at}),
    )
    .about(event.details.petition_id);
    let code = store
        .create_enrollment_code(event.id, expires_at, audit)
        .await?;
    println!("{code}");
    Ok(())
}
