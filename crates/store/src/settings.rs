//! Settings shared by every instance.

use rand::RngCore;

use crate::{Store, StoreError};

impl Store {
    /// The identity pepper stored in the database, generated on first use.
    /// Returns the hex-encoded pepper and whether this call generated it.
    pub async fn stored_pepper(&self) -> Result<(String, bool), StoreError> {
        self.stored_secret("identity_pepper").await
    }

    /// The identity pepper an earlier start generated and stored, if any;
    /// generates nothing.
    pub async fn pepper_stored_before(&self) -> Result<Option<String>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                "SELECT value FROM settings WHERE name = 'identity_pepper'",
                &[],
            )
            .await?
            .map(|row| row.get(0)))
    }

    /// The seed of the key that signs export bundles, like the pepper.
    pub async fn stored_export_key(&self) -> Result<(String, bool), StoreError> {
        self.stored_secret("export_signing_key").await
    }

    /// 32 random bytes, hex-encoded, stored under `name` on first use.
    async fn stored_secret(&self, name: &str) -> Result<(String, bool), StoreError> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let candidate = hex::encode(secret);
        let client = self.pool.get().await?;
        // Instances starting together all offer one; the first insert wins.
        let inserted = client
            .execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate],
            )
            .await?;
        let row = client
            .query_one("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?;
        Ok((row.get(0), inserted == 1))
    }
}
