//! Who could still join a batch. The guard's Redis call and the writers'
//! commit linger when what they gathered is small (see `script.rs` and the
//! ingest's `writer.rs`): at a moderate rate, more signatures arrive while
//! they wait, and each call or commit's fixed cost is shared. But when every
//! client connected has a signature waiting already, as a load balancer's
//! kept-alive pool or a crowd in a closed loop does, nobody can arrive: each
//! waits for the others' answers, and lingering only makes everyone wait.
//!
//! So the service counts the client connections that could send a signature
//! (open, and not holding a live count stream), the signatures gathering (from
//! the guard's check to the writers' answer) and those queued for the writers.
//! A linger ends as soon as every such connection's signature has reached its
//! stage. Open connections that are idle, as on the web at large or under an
//! open-loop schedule, keep the linger as it was: one of them may send next.
//! Without any connection counted (paper imports, the command line, tests of
//! the path alone) nothing is known, and lingering is left to its timer.

use std::sync::Arc;
// Sequentially consistent: a count changed and the other read must not both
// miss the state where nobody is left (a closing connection, an arrival).
use std::sync::atomic::{AtomicIsize, Ordering};

use tokio::sync::Notify;

/// The counts, shared by the HTTP server, the guard and the writers.
#[derive(Default)]
pub struct Joiners {
    /// Client connections that could send a signature.
    connected: AtomicIsize,
    /// Signatures between the guard's check and the writers' answer.
    gathering: AtomicIsize,
    /// Of those, the ones queued for the writers.
    queued: AtomicIsize,
    /// Told when a stage may have nobody left to wait for: a signature
    /// reached it, or a connection closed (or began a stream).
    reached: Notify,
}

/// Where a signature waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Anywhere from the guard's check to the writers' answer.
    Gathering,
    /// Queued for the writers.
    Queued,
}

impl Joiners {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether every connected client's signature has reached `stage`.
    pub fn none_left(&self, stage: Stage) -> bool {
        let connected = self.connected.load(Ordering::SeqCst);
        connected > 0 && self.count(What::Waiting(stage)).load(Ordering::SeqCst) >= connected
    }

    /// Resolves once [`Joiners::none_left`] holds for `stage`.
    pub async fn until_none_left(&self, stage: Stage) {
        loop {
            let reached = self.reached.notified();
            tokio::pin!(reached);
            // Registered before looking, so that no telling is missed.
            reached.as_mut().enable();
            if self.none_left(stage) {
                return;
            }
            reached.await;
        }
    }

    fn count(&self, what: What) -> &AtomicIsize {
        match what {
            What::Connected => &self.connected,
            What::Waiting(Stage::Gathering) => &self.gathering,
            What::Waiting(Stage::Queued) => &self.queued,
        }
    }

    /// Adds `by` to a count, and tells lingering stages when that may have
    /// left nobody to wait for: a signature arriving, a connection leaving.
    fn change(&self, what: What, by: isize) {
        self.count(what).fetch_add(by, Ordering::SeqCst);
        let may_end = match what {
            What::Connected => by < 0,
            What::Waiting(_) => by > 0,
        };
        if may_end && (self.none_left(Stage::Gathering) || self.none_left(Stage::Queued)) {
            self.reached.notify_waiters();
        }
    }

    fn take(self: &Arc<Self>, what: What, by: isize) -> Counted {
        self.change(what, by);
        Counted {
            joiners: self.clone(),
            what,
            by,
        }
    }

    /// A client connection that may send signatures, until dropped.
    pub fn connection(self: &Arc<Self>) -> Counted {
        self.take(What::Connected, 1)
    }

    /// A connection busy with something that sends no signature while it
    /// lasts (a live count stream), until dropped.
    pub fn busy_elsewhere(self: &Arc<Self>) -> Counted {
        self.take(What::Connected, -1)
    }

    /// A signature waiting at `stage`, until dropped.
    pub fn waiting(self: &Arc<Self>, stage: Stage) -> Counted {
        self.take(What::Waiting(stage), 1)
    }
}

#[derive(Clone, Copy)]
enum What {
    Connected,
    Waiting(Stage),
}

/// One count taken; dropping it gives it back.
#[must_use = "the count lasts as long as this value"]
pub struct Counted {
    joiners: Arc<Joiners>,
    what: What,
    by: isize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.joiners.change(self.what, -self.by);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn nobody_connected_is_not_nobody_left() {
        let j = Joiners::new();
        assert!(!j.none_left(Stage::Gathering));
        let _waiting = j.waiting(Stage::Gathering);
        assert!(
            !j.none_left(Stage::Gathering),
            "a signature from no connection"
        );
    }

    #[test]
    fn every_connection_waiting_leaves_nobody_to_join() {
        let j = Joiners::new();
        let a = j.connection();
        let _b = j.connection();
        let _one = j.waiting(Stage::Gathering);
        assert!(!j.none_left(Stage::Gathering));
        let two = j.waiting(Stage::Gathering);
        assert!(j.none_left(Stage::Gathering));
        assert!(!j.none_left(Stage::Queued), "none queued yet");
        drop(two);
        assert!(!j.none_left(Stage::Gathering));
        // One connection closing leaves the other's signature the last.
        drop(a);
        assert!(j.none_left(Stage::Gathering));
    }

    #[test]
    fn a_stream_sends_no_signature() {
        let j = Joiners::new();
        let _a = j.connection();
        let b = j.connection();
        let _waiting = j.waiting(Stage::Queued);
        assert!(!j.none_left(Stage::Queued));
        let streaming = j.busy_elsewhere();
        assert!(j.none_left(Stage::Queued));
        drop(streaming);
        assert!(!j.none_left(Stage::Queued));
        drop(b);
        assert!(j.none_left(Stage::Queued));
    }

    #[tokio::test]
    async fn a_lingering_stage_is_told_when_the_last_one_arrives() {
        let j = Joiners::new();
        let _a = j.connection();
        let _b = j.connection();
        let _first = j.waiting(Stage::Queued);
        let lingering = tokio::spawn({
            let j = j.clone();
            async move { j.until_none_left(Stage::Queued).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!lingering.is_finished());
        let _second = j.waiting(Stage::Queued);
        tokio::time::timeout(Duration::from_secs(1), lingering)
            .await
            .expect("told at once")
            .unwrap();
    }
}
