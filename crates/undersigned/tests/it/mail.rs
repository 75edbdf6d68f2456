//! The outbox and its mailers: queued messages reach a real SMTP server on
//! 127.0.0.1 and leave the outbox; a relay that refuses for a while still
//! gets every message; without a relay, messages are written as files.

use std::time::Duration;

use undersigned_store::{Content, OutgoingMail, Store};

use crate::smtp_sink::SmtpSink;
use crate::support::{Namespace, TestApp, outbox_empties};

fn message(i: usize) -> OutgoingMail {
    OutgoingMail {
        kind: "confirmation",
        sender: "campaign@undersigned.test".into(),
        recipient: format!("signer{i}@example.org"),
        content: Content::Message(
            format!(
                "From: campaign@undersigned.test\r\nTo: signer{i}@example.org\r\n\
             Subject: Message {i}\r\n\r\nPlease confirm, {i}.\r\n"
            )
            .into_bytes(),
        ),
    }
}

/// The text a queued message carries.
fn text(mail: &OutgoingMail) -> &[u8] {
    match &mail.content {
        Content::Message(m) => m,
        Content::Letter(_) => panic!("these tests queue whole messages"),
    }
}

async fn queue(ns: &Namespace, mail: &[OutgoingMail]) {
    let store = Store::connect(&ns.database_url(), 1).expect("store");
    store.enqueue_mail(mail).await.expect("queued");
}

fn counted(metrics: &str, outcome: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("undersigned_mail_messages_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_reach_a_real_smtp_server_and_leave_the_outbox() {
    let ns = Namespace::new();
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::start(&ns, |c| {
        c.smtp_url = Some(url.parse().unwrap());
        c.mail_rate = None;
    })
    .await;
    let mail: Vec<OutgoingMail> = (0..3).map(message).collect();
    queue(&ns, &mail).await;
    let mut received = sink.wait_for(3, Duration::from_secs(10)).await;
    received.sort_by(|a, b| a.to.cmp(&b.to));
    for (got, sent) in received.iter().zip(&mail) {
        assert_eq!(got.from, sent.sender);
        assert_eq!(got.to, std::slice::from_ref(&sent.recipient));
        // lettre ends the data with CRLF.CRLF after the message's own CRLF.
        assert_eq!(got.data.trim_ascii_end(), text(sent).trim_ascii_end());
    }
    outbox_empties(&ns, Duration::from_secs(5)).await;
    assert_eq!(sink.received().len(), 3, "each message sent once");
    assert_eq!(counted(&app.metrics_text().await, "sent"), 3.0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_for_a_while_gets_every_message_later() {
    let ns = Namespace::new();
    let sink = SmtpSink::start().await;
    sink.refuse_next(2);
    let url = sink.url();
    let app = TestApp::start(&ns, |c| {
        c.smtp_url = Some(url.parse().unwrap());
        c.mail_rate = None;
    })
    .await;
    queue(&ns, &[message(1), message(2)]).await;
    // Both refused once (451), then tried again after the first pause (5 s).
    let received = sink.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(sink.refused(), 2);
    assert_eq!(received.len(), 2);
    outbox_empties(&ns, Duration::from_secs(5)).await;
    let metrics = app.metrics_text().await;
    assert_eq!(counted(&metrics, "retried"), 2.0);
    assert_eq!(counted(&metrics, "sent"), 2.0);
    assert_eq!(counted(&metrics, "failed"), 0.0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_each_message_is_written_as_a_file() {
    let ns = Namespace::new();
    let dir = std::env::temp_dir().join(format!("{}-mail", ns.database));
    let folder = dir.clone();
    let app = TestApp::start(&ns, |c| {
        c.smtp_url = None;
        c.mail_dir = folder;
    })
    .await;
    let sent = message(7);
    queue(&ns, std::slice::from_ref(&sent)).await;
    outbox_empties(&ns, Duration::from_secs(10)).await;
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the folder")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    assert_eq!(std::fs::read(&files[0]).unwrap(), text(&sent));
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
    ns.clean().await;
}
