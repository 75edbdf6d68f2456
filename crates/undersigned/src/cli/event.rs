//! `undersigned event …`: street events and their tablets' enrollment codes,
//! with the checks, store calls and audit entries of `POST
//! /v1/petitions/{slug}/events` and `POST /v1/events/{id}/enrollment-codes`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};
use undersigned::{Config, open_store};
use undersigned_store::{ENROLLMENT_CODE_LIFETIME, EventInput, NewEvent};

use super::listing::{self, time};
use super::petition::counts;
use super::{CliError, audited, country, id, petition_named};

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

async fn create(options: EventCreate, config: &Config) -> Result<(), CliError> {
    let input = EventInput {
        name: Some(options.name),
        place: options.place,
        country: Some(options.country),
        starts_at: Some(options.starts_at.to_rfc3339()),
        ends_at: Some(options.ends_at.to_rfc3339()),
    };
    // Checked as the API checks an event, before the database is opened;
    // the petition is only known after.
    let mut new = NewEvent::parse(0, input, Utc::now()).map_err(|errors| {
        CliError::Usage(
            errors
                .iter()
                .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.code))
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let (store, _) = open_store(config).await?;
    let petition = petition_named(&store, "--petition", &options.petition).await?;
    new.petition_id = petition.id;
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
    if !event.enrolls_tablets_at(Utc::now()) {
        return Err(CliError::Refused(format!(
            "event {id}: over, and its tablets' time with it"
        )));
    }
    let expires_at = Utc::now() + ENROLLMENT_CODE_LIFETIME;
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
