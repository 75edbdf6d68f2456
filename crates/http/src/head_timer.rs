//! The clock behind hyper's header read timeout, one per connection.
//!
//! hyper asks its timer for a new sleep each time it starts reading a request
//! head, and drops it once the head is in. With tokio's timer behind it
//! (`hyper_util::rt::TokioTimer`), every request put a timer into tokio's
//! wheel and took it out again, under the wheel's lock: 1,456 instructions a
//! request, a tenth of a counter read (benches/BENCHMARKS.md, "Counter
//! reads").
//!
//! Here each connection has one tokio timer, its alarm, made at its first
//! head and kept. A head's sleep is only a deadline beside it. The alarm is
//! set for the deadline of the head that first waited on it, and deadlines
//! only grow (each is the moment the head began plus the same timeout), so it
//! never rings late; when it rings early (that head arrived in time and a
//! later one is waiting), it is set again for the waiting head's deadline.
//! The wheel is touched about once per timeout a connection, whatever the
//! number of requests on it. A head that does not arrive in time ends the
//! connection at its deadline, as before. About 600 of the 1,456
//! instructions are saved; the alarm's lock and poll, the box hyper asks for
//! each head and the clock read remain (benches/BENCHMARKS.md, "Requests
//! cost less").

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type Alarm = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

/// The timer of one connection's header reads.
#[derive(Default)]
pub(crate) struct HeadTimer {
    alarm: Alarm,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    /// tokio's clock, which the alarm keeps (the same as the system's, but
    /// where tokio's time is paused, in tests).
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadDeadline {
            deadline: deadline.into(),
            alarm: self.alarm.clone(),
        })
    }
}

/// One head's deadline: ready once it has passed.
struct HeadDeadline {
    deadline: tokio::time::Instant,
    alarm: Alarm,
}

impl hyper::rt::Sleep for HeadDeadline {}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let mut alarm = self.alarm.lock().unwrap_or_else(|e| e.into_inner());
        let alarm = alarm.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // Only a timer asked for another duration than the timeout's could
        // have an earlier deadline than the alarm's.
        if alarm.deadline() > deadline {
            alarm.as_mut().reset(deadline);
        }
        loop {
            match alarm.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if alarm.deadline() >= deadline => return Poll::Ready(()),
                // Rung for an earlier head: set for this one's deadline.
                Poll::Ready(()) => alarm.as_mut().reset(deadline),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::rt::Timer;

    use super::HeadTimer;

    /// Heads one after another on one connection: each deadline is kept to
    /// the moment, though the alarm was set for the first one's.
    #[tokio::test(start_paused = true)]
    async fn each_head_times_out_at_its_own_deadline_on_one_alarm() {
        let timer = HeadTimer::default();
        let timeout = Duration::from_secs(10);
        let first = timer.sleep(timeout);
        // The first head waits, then arrives in time.
        tokio::time::timeout(Duration::from_secs(3), first)
            .await
            .expect_err("not due yet");
        let started = tokio::time::Instant::now();
        // The second waits past the first's deadline and times out at its own.
        timer.sleep(timeout).await;
        assert_eq!(started.elapsed(), timeout);
        // A head with a nearer deadline than the alarm's is not kept waiting.
        let started = tokio::time::Instant::now();
        let mut later = timer.sleep(timeout);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(later.as_mut().poll(&mut cx).is_pending());
        let sooner = timer.sleep_until(timer.now() + Duration::from_secs(1));
        sooner.await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        later.await;
        assert_eq!(started.elapsed(), timeout);
    }

    /// The alarm is made once, however many heads come.
    #[tokio::test(start_paused = true)]
    async fn one_alarm_serves_every_head() {
        let timer = HeadTimer::default();
        let mut alarms = Vec::new();
        for _ in 0..3 {
            let mut head = timer.sleep(Duration::from_secs(10));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(head.as_mut().poll(&mut cx).is_pending());
            let alarm = {
                let alarm = timer.alarm.lock().unwrap();
                alarm
                    .as_ref()
                    .map(|a| std::ptr::from_ref(a.as_ref().get_ref()))
            };
            alarms.push(alarm);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert!(alarms[0].is_some());
        assert!(alarms.iter().all(|a| *a == alarms[0]), "{alarms:?}");
    }
}
