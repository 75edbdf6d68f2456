//! Confirmations in groups: signers follow their links thousands a second
//! while others sign, and one commit for each link would queue them for the
//! pool's connections (benches/BENCHMARKS.md). One task takes what has
//! arrived meanwhile, confirms it in one statement, shows the new count, then
//! answers each link; a group is small when links are few, so a lone link
//! waits for nothing but its own commit.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use undersigned_store::{Confirmed, Store, StoreError};

use crate::counter::{Announcer, Counter};

/// Links confirmed in one statement at most.
const GROUP_MAX: usize = 512;
/// Links waiting for a group at most; more are answered 503, as the
/// signature queue's overflow is.
pub(crate) const WAITING_MAX: usize = 8192;

/// One link's token hash and where its outcome goes.
pub(crate) struct Link {
    pub hash: Vec<u8>,
    pub reply: oneshot::Sender<Result<Option<Confirmed>, StoreError>>,
}

pub(crate) struct Confirmer {
    pub store: Store,
    pub links: Arc<Mutex<mpsc::Receiver<Link>>>,
    pub counter: Arc<Counter>,
    pub announcer: Option<Arc<Announcer>>,
}

impl Confirmer {
    /// Confirms groups until every sender is gone.
    pub async fn run(&self) {
        let mut links = self.links.lock().await;
        let mut group = Vec::with_capacity(GROUP_MAX);
        while links.recv_many(&mut group, GROUP_MAX).await > 0 {
            let hashes: Vec<&[u8]> = group.iter().map(|l| l.hash.as_slice()).collect();
            match self.store.confirm_group(&hashes).await {
                Ok(done) => {
                    if !done.cells.is_empty() {
                        self.counter.merge(&done.cells);
                        if let Some(announcer) = &self.announcer {
                            announcer.announce(&done.cells, &[]);
                        }
                    }
                    for (link, outcome) in group.drain(..).zip(done.each) {
                        let _ = link.reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    // Nothing of the group was counted: each link may be
                    // followed again.
                    let e = Arc::new(e);
                    for link in group.drain(..) {
                        let _ = link.reply.send(Err(StoreError::Shared(e.clone())));
                    }
                }
            }
        }
    }
}
