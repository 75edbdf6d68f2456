//! Sealing a sealed petition's signatures before they are queued for
//! Postgres (crates/seal explains the construction): one epoch key per
//! petition at a time, its wrapped form stored before it seals a row, and
//! dropped from memory once its hour or its rows run out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use undersigned_seal::{Epoch, Personal, SealError};
use undersigned_store::{Petition, SealEpoch, SignatureRow, Store, StoreError};

pub(crate) struct Sealer {
    store: Store,
    /// The open epoch of each sealed petition that signed lately.
    epochs: Mutex<HashMap<i64, Arc<Epoch>>>,
    /// Held while an epoch is opened, so that signers arriving together
    /// share one rather than each opening their own.
    opening: tokio::sync::Mutex<()>,
}

impl Sealer {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            epochs: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
        }
    }

    /// The epoch that seals `petition`'s next rows: the open one, or a new
    /// one once its wrapped key is stored. One public-key operation per
    /// recipient per epoch, none per signature.
    pub(crate) async fn epoch(&self, petition: &Petition) -> Result<Arc<Epoch>, StoreError> {
        if let Some(epoch) = self.current(petition) {
            return Ok(epoch);
        }
        let _opening = self.opening.lock().await;
        if let Some(epoch) = self.current(petition) {
            return Ok(epoch);
        }
        let (epoch, wrapped) =
            Epoch::open(&petition.sealing).map_err(|e| StoreError::Config(e.to_string()))?;
        let stored = SealEpoch {
            id: epoch.id(),
            recipients: petition.sealing.clone(),
            wrapped,
        };
        self.store.store_seal_epoch(petition.id, &stored).await?;
        let epoch = Arc::new(epoch);
        self.lock().insert(petition.id, epoch.clone());
        Ok(epoch)
    }

    fn current(&self, petition: &Petition) -> Option<Arc<Epoch>> {
        self.lock()
            .get(&petition.id)
            .filter(|e| e.serves(&petition.sealing))
            .cloned()
    }

    /// Drops the keys of epochs that ended, so that no idle petition keeps
    /// one in memory longer than its hour.
    pub(crate) fn retire(&self) {
        self.lock().retain(|_, epoch| !epoch.ended());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Epoch>>> {
        self.epochs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Moves a row's personal fields into its sealed value. A pending web
/// signature keeps its address in clear for its confirmation message, which
/// clears it once sent (`Store::confirmations_sent`). What abuse handling
/// needs stays: the email's domain, and the client address cut to its /24
/// (IPv4) or /48 (IPv6) network.
pub(crate) fn seal(epoch: &Epoch, row: &mut SignatureRow) -> Result<(), SealError> {
    let email = if row.confirmation.is_some() {
        row.email.clone()
    } else {
        row.email.take()
    };
    row.email_domain = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, domain)| domain.to_lowercase());
    let personal = Personal {
        full_name: std::mem::take(&mut row.full_name),
        email,
        organization: row.organization.take(),
        postal_code: row.postal_code.take(),
        city: row.city.take(),
        client_address: row.client_address.map(|a| a.to_string()),
    };
    row.sealed = Some(epoch.seal(row.id, &personal)?);
    row.client_address = row.client_address.map(network);
    Ok(())
}

/// The first address of the /24 (IPv4) or /48 (IPv6) network.
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            IpAddr::from([x, y, z, 0])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_network() {
        assert_eq!(
            network("192.0.2.77".parse().unwrap()),
            "192.0.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
    }
}
