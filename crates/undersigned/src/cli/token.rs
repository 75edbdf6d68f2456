//! `undersigned token …`: issue, list and revoke API tokens, with the store
//! calls and audit entries of `/v1/tokens`. A token's secret is printed once,
//! when issued, and never listed.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use undersigned::{Config, open_store};
use undersigned_store::{NewToken, Role};

use super::listing::{self, maybe_time};
use super::{CliError, audited, country, future_time, id, petition_named};

#[derive(Subcommand)]
pub enum TokenCommand {
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
    /// List every token, newest first, revoked ones too: id, role, scope,
    /// expiry, last use; never a secret.
    List {
        /// One JSON object per line, for scripts, instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once, on every instance, as `DELETE /v1/tokens/{id}` does.
    Revoke {
        /// The token's id, as `token list` shows it.
        #[arg(value_parser = id)]
        id: uuid::Uuid,
    },
}

/// The roles a token can have, as the command line names them.
#[derive(Clone, Copy, ValueEnum)]
pub enum RoleName {
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

pub async fn execute(command: TokenCommand, config: &Config) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            role,
            petitions,
            countries,
            expires,
        } => create(config, role.into(), petitions, countries, expires).await,
        TokenCommand::List { json } => list(config, json).await,
        TokenCommand::Revoke { id } => revoke(config, id).await,
    }
}

async fn create(
    config: &Config,
    role: Role,
    petitions: Vec<String>,
    countries: Vec<String>,
    expires: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), CliError> {
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
    let (store, _) = open_store(config).await?;
    let mut petition_ids = Vec::new();
    for slug in &petitions {
        petition_ids.push(petition_named(&store, "--petition", slug).await?.id);
    }
    let audit = audited(
        "token.create",
        json!({"role": role.as_str(), "petitions": petitions, "countries": countries}),
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

/// `token list`: what `GET /v1/tokens` answers, in columns.
async fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let rows: Vec<Value> = store
        .tokens()
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.token.id,
                "role": r.token.role.as_str(),
                "petitions": r.petitions,
                "countries": r.token.countries,
                "expires_at": maybe_time(r.expires_at),
                "last_used_at": maybe_time(r.last_used_at),
                "revoked_at": maybe_time(r.revoked_at),
            })
        })
        .collect();
    listing::print(
        &[
            "id",
            "role",
            "petitions",
            "countries",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ],
        &rows,
        json,
    );
    Ok(())
}

async fn revoke(config: &Config, id: uuid::Uuid) -> Result<(), CliError> {
    let (store, _) = open_store(config).await?;
    let audit = audited("token.revoke", json!({"token": id}));
    if !store.revoke_token(id, audit).await? {
        return Err(CliError::Refused(format!(
            "token {id}: no such token, or revoked already"
        )));
    }
    println!("{id} revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use undersigned_store::Role;

    use super::RoleName;
    use crate::cli::choice_name;

    #[test]
    fn the_command_line_names_roles_as_the_api_does() {
        for r in RoleName::value_variants() {
            assert_eq!(Role::parse(&choice_name(r)), Some(Role::from(*r)));
        }
    }
}
