//! Suspicion signals: who is signing fastest right now. Read from the last
//! hour's rows (a BRIN index on `signed_at` finds them), shadowed and
//! invalidated ones included: the signal is the volume of attempts.
//! Signatures without an email (tablets and paper forms, where a petition
//! allows it) have no domain and count toward no domain: lumped together they
//! would top every list with a bucket no one could block.

use crate::{Store, StoreError};

/// How many signatures one address or one email domain sent in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub key: String,
    pub signatures: i64,
}

/// The fastest addresses and email domains of one petition.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub addresses: Vec<Signal>,
    pub email_domains: Vec<Signal>,
}

/// The fastest of every petition that had signatures in the window.
#[derive(Debug, Clone)]
pub struct PetitionSignals {
    pub slug: String,
    pub signals: Signals,
}

const WINDOW: &str = "interval '1 hour'";

/// An IPv6 /64 is one address, as the limits count it.
const ADDRESS: &str = "CASE WHEN family(client_address) = 6 \
    THEN text(network(set_masklen(client_address, 64))) ELSE host(client_address) END";

fn by_address(filter: &str) -> String {
    format!(
        "SELECT petition_id, {ADDRESS} AS key, count(*) AS n,
                row_number() OVER (PARTITION BY petition_id ORDER BY count(*) DESC,
                                   {ADDRESS}) AS rank
         FROM signatures
         WHERE signed_at > now() - {WINDOW} AND client_address IS NOT NULL {filter}
         GROUP BY petition_id, {ADDRESS}"
    )
}

/// A sealed signature keeps its email's domain in clear, beside the sealed address.
const DOMAIN: &str = "coalesce(email_domain, lower(split_part(email, '@', 2)))";

fn by_domain(filter: &str) -> String {
    format!(
        "SELECT petition_id, {DOMAIN} AS key, count(*) AS n,
                row_number() OVER (PARTITION BY petition_id ORDER BY count(*) DESC,
                                   {DOMAIN}) AS rank
         FROM signatures
         WHERE signed_at > now() - {WINDOW} AND (email IS NOT NULL OR email_domain IS NOT NULL)
           {filter}
         GROUP BY petition_id, {DOMAIN}"
    )
}

impl Store {
    /// The `top` fastest addresses and domains of one petition in the last hour.
    pub async fn signals(&self, petition_id: i64, top: i64) -> Result<Signals, StoreError> {
        let client = self.pool.get().await?;
        let filter = "AND petition_id = $1";
        let mut signals = Signals::default();
        for (sql, out) in [
            (by_address(filter), &mut signals.addresses),
            (by_domain(filter), &mut signals.email_domains),
        ] {
            let rows = client
                .query(
                    &format!("SELECT key, n FROM ({sql}) s WHERE rank <= $2 ORDER BY rank"),
                    &[&petition_id, &top],
                )
                .await?;
            for row in rows {
                out.push(Signal {
                    key: row.try_get("key")?,
                    signatures: row.try_get("n")?,
                });
            }
        }
        Ok(signals)
    }

    /// The same for every petition signed in the last hour, in one pass each.
    pub async fn all_signals(&self, top: i64) -> Result<Vec<PetitionSignals>, StoreError> {
        let client = self.pool.get().await?;
        let mut all: std::collections::BTreeMap<String, Signals> = Default::default();
        for (sql, addresses) in [(by_address(""), true), (by_domain(""), false)] {
            let rows = client
                .query(
                    &format!(
                        "SELECT p.slug, s.key, s.n FROM ({sql}) s
                         JOIN petitions p ON p.id = s.petition_id
                         WHERE s.rank <= $1 ORDER BY p.slug, s.rank"
                    ),
                    &[&top],
                )
                .await?;
            for row in rows {
                let signals = all.entry(row.try_get("slug")?).or_default();
                let signal = Signal {
                    key: row.try_get("key")?,
                    signatures: row.try_get("n")?,
                };
                if addresses {
                    signals.addresses.push(signal);
                } else {
                    signals.email_domains.push(signal);
                }
            }
        }
        Ok(all
            .into_iter()
            .map(|(slug, signals)| PetitionSignals { slug, signals })
            .collect())
    }
}
