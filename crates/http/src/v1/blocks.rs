//! Block and allow rules (admin): address ranges, email domains, emails.

use http::StatusCode;
use serde_json::{Value, json};
use undersigned_domain::{Email, FieldError, Text};
use undersigned_ingest::parse_range;
use undersigned_store::{BlockAction, BlockKind, BlockRule, NewBlockRule, Token};

use crate::call::{Answer, Call};
use crate::fields::{check, validated};
use crate::problem::ApiError;
use crate::reply::{json, no_content};

const REASON_MAX: usize = 500;

fn rule_json(rule: &BlockRule) -> Value {
    json!({
        "id": rule.id,
        "kind": rule.kind.as_str(),
        "pattern": rule.pattern,
        "action": rule.action.as_str(),
        "reason": rule.reason,
        "petition": rule.petition_slug,
        "created_at": rule.created_at,
    })
}

/// The pattern in its stored form: a canonical CIDR, a lower-case domain glob,
/// or a canonical email address.
fn pattern(kind: BlockKind, raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("required");
    }
    match kind {
        BlockKind::Address => parse_range(raw).map(|n| n.to_string()).ok_or("invalid"),
        BlockKind::EmailDomain => {
            let glob = raw.to_ascii_lowercase();
            let sane = glob.len() <= 253
                && glob
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.*".contains(&b))
                && glob != "*";
            if sane { Ok(glob) } else { Err("invalid") }
        }
        BlockKind::Email => Email::parse(raw).map(|e| e.canonical().to_owned()),
    }
}

/// `POST /v1/blocks` (admins).
pub async fn create(mut call: Call<'_>, token: Token) -> Answer {
    let app = call.app;
    let fields = call
        .fields(&["kind", "pattern", "action", "reason", "petition"])
        .await?;
    let mut errors = Vec::new();
    let kind = fields.text("kind", &mut errors);
    let raw_pattern = fields.text("pattern", &mut errors);
    let action = fields.text("action", &mut errors);
    let reason = fields.text("reason", &mut errors);
    let slug = fields.text("petition", &mut errors);
    let petition = match &slug {
        Some(slug) => Some(
            app.catalog
                .by_slug(slug)
                .await?
                .ok_or(ApiError::Invalid(vec![FieldError::new(
                    "petition", "unknown",
                )]))?,
        ),
        None => None,
    };
    let mut invalid = Vec::new();
    let kind = check(
        &mut invalid,
        "kind",
        kind.as_deref()
            .ok_or("required")
            .and_then(|k| BlockKind::parse(k.trim()).ok_or("invalid")),
    );
    let action = check(
        &mut invalid,
        "action",
        action
            .as_deref()
            .ok_or("required")
            .and_then(|a| BlockAction::parse(a.trim()).ok_or("invalid")),
    );
    let reason = check(
        &mut invalid,
        "reason",
        Text::parse(reason.as_deref().unwrap_or(""), REASON_MAX),
    );
    let pattern = kind.and_then(|kind| {
        check(
            &mut invalid,
            "pattern",
            pattern(kind, raw_pattern.as_deref().unwrap_or("")),
        )
    });
    let parsed = match (kind, pattern, action, reason) {
        (Some(kind), Some(pattern), Some(action), Some(reason)) => Ok(NewBlockRule {
            kind,
            pattern,
            action,
            reason: reason.into_string(),
            petition_id: petition.as_ref().map(|p| p.id),
        }),
        _ => Err(invalid),
    };
    let rule = validated(errors, parsed)?;
    let by = call.actor(&token);
    let mut created = app.store.create_block_rule(&rule, &by).await?;
    created.petition_slug = slug;
    app.ingest.blocks().reload().await?;
    tracing::info!(
        rule = created.id,
        kind = rule.kind.as_str(),
        action = rule.action.as_str(),
        "block rule added"
    );
    Ok(json(StatusCode::CREATED, &rule_json(&created)))
}

/// `GET /v1/blocks` (admins).
pub async fn list(call: Call<'_>, _: Token) -> Answer {
    let rules = call.app.store.block_rules().await?;
    let rules: Vec<Value> = rules.iter().map(rule_json).collect();
    Ok(json(StatusCode::OK, &json!({ "rules": rules })))
}

/// `DELETE /v1/blocks/{id}` (admins).
pub async fn remove(call: Call<'_>, token: Token) -> Answer {
    let app = call.app;
    let id: i64 = call.id().parse().map_err(|_| ApiError::NotFound)?;
    if !app.store.remove_block_rule(id, &call.actor(&token)).await? {
        return Err(ApiError::NotFound);
    }
    app.ingest.blocks().reload().await?;
    Ok(no_content())
}
