//! Composing the messages sent to signers: plain text and HTML parts, in the
//! signer's language, with their own `Message-ID` and `Date`. Every link comes
//! from the configured public address, never from a request.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart, header};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use undersigned_domain::{Placeholders, fill, notices, right_to_left};
use undersigned_store::{Content, OutgoingMail};
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum LetterError {
    #[error("the recipient's address is not one a relay takes")]
    Recipient,
    #[error("composing the message failed: {0}")]
    Compose(String),
}

/// Who messages come from, and the public address their links start with.
#[derive(Debug, Clone)]
pub struct Letterhead {
    pub from: Mailbox,
    /// `https://sign.example` (no trailing slash).
    pub public_url: String,
    /// How long a pending signature waits for its confirmation.
    pub confirm_days: u64,
}

impl Letterhead {
    pub fn new(from: Mailbox, public_url: &str, confirm_days: u64) -> Self {
        Self {
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
            confirm_days,
        }
    }

    /// The link that confirms a signature.
    pub fn confirm_link(&self, token: &str) -> String {
        format!("{}/confirm/{token}", self.public_url)
    }

    /// Where a signer asks for a withdrawal link.
    pub fn withdraw_link(&self, slug: &str) -> String {
        format!("{}/withdraw?petition={slug}", self.public_url)
    }

    /// The host part of `Message-ID`s: the public address's host.
    fn message_host(&self) -> &str {
        let rest = self
            .public_url
            .split_once("://")
            .map_or(self.public_url.as_str(), |(_, r)| r);
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    }
}

/// A confirmation request for one signature.
pub struct ConfirmationLetter<'a> {
    pub to: &'a str,
    /// The locale of `title`: the signer's when the petition speaks it, else
    /// the petition's default.
    pub locale: &'a str,
    pub title: &'a str,
    pub slug: &'a str,
    pub receipt: Uuid,
    /// The token, as written in the link.
    pub token: &'a str,
    /// The petition's own subject and body for this locale, if it has them.
    pub words: Option<(&'a str, &'a str)>,
}

/// A withdrawal link for one signature, sent when its signer asks for one.
pub struct WithdrawalLetter<'a> {
    pub to: &'a str,
    pub locale: &'a str,
    pub title: &'a str,
    pub receipt: Uuid,
    pub token: &'a str,
}

/// A letter as it waits in the outbox: what the mailer needs to compose the
/// message when it sends it (a hundred bytes or so, where the message itself
/// is two kilobytes). Withdrawal links wait so, and so did confirmation
/// letters queued before V16; both still go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Letter {
    kind: LetterKind,
    locale: String,
    title: String,
    /// The petition's slug (for the withdrawal form's link).
    slug: String,
    receipt: Uuid,
    token: String,
    /// The petition's own subject and body, if it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    words: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LetterKind {
    Confirmation,
    Withdrawal,
}

impl LetterKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Withdrawal => "withdrawal",
        }
    }
}

impl Letterhead {
    /// The message asking a signer to confirm, composed as the mailer sends
    /// it (the signature waits for it on its own row, not in the outbox).
    pub fn confirmation(&self, letter: &ConfirmationLetter) -> Result<Vec<u8>, LetterError> {
        self.write(
            letter.to,
            &Letter {
                kind: LetterKind::Confirmation,
                locale: letter.locale.to_owned(),
                title: letter.title.to_owned(),
                slug: letter.slug.to_owned(),
                receipt: letter.receipt,
                token: letter.token.to_owned(),
                words: letter.words.map(|(s, b)| (s.to_owned(), b.to_owned())),
            },
        )
    }

    /// Whether a relay would take `to` as a recipient: a signature whose
    /// address no message could reach is refused when it is given.
    pub fn deliverable(to: &str) -> bool {
        to.parse::<lettre::Address>().is_ok()
    }

    /// The letter carrying a withdrawal link, ready for the outbox.
    pub fn withdrawal(&self, letter: &WithdrawalLetter) -> Result<OutgoingMail, LetterError> {
        self.queue(
            letter.to,
            &Letter {
                kind: LetterKind::Withdrawal,
                locale: letter.locale.to_owned(),
                title: letter.title.to_owned(),
                slug: String::new(),
                receipt: letter.receipt,
                token: letter.token.to_owned(),
                words: None,
            },
        )
    }

    fn queue(&self, to: &str, letter: &Letter) -> Result<OutgoingMail, LetterError> {
        let recipient: lettre::Address = to.parse().map_err(|_| LetterError::Recipient)?;
        Ok(OutgoingMail {
            kind: letter.kind.as_str(),
            sender: self.from.email.to_string(),
            recipient: recipient.to_string(),
            content: Content::Letter(
                serde_json::to_string(letter).map_err(|e| LetterError::Compose(e.to_string()))?,
            ),
        })
    }

    /// The message a queued letter (its JSON) stands for, to `to`: composed
    /// now, with its own `Message-ID` and the time of sending.
    pub fn render(&self, to: &str, letter: &str) -> Result<Vec<u8>, LetterError> {
        let letter: Letter =
            serde_json::from_str(letter).map_err(|e| LetterError::Compose(e.to_string()))?;
        self.write(to, &letter)
    }

    fn write(&self, to: &str, letter: &Letter) -> Result<Vec<u8>, LetterError> {
        let words = notices(&letter.locale);
        let (link, withdraw, built_in) = match letter.kind {
            LetterKind::Confirmation => (
                self.confirm_link(&letter.token),
                self.withdraw_link(&letter.slug),
                (words.confirm_subject, words.confirm_body),
            ),
            LetterKind::Withdrawal => {
                let link = format!("{}/withdraw/{}", self.public_url, letter.token);
                (
                    link.clone(),
                    link,
                    (words.withdraw_subject, words.withdraw_body),
                )
            }
        };
        let values = Placeholders {
            title: &letter.title,
            link: &link,
            receipt: letter.receipt,
            days: self.confirm_days,
            withdraw: &withdraw,
        };
        let (subject, body) = match &letter.words {
            Some((subject, body)) => (subject.as_str(), body.as_str()),
            None => built_in,
        };
        let subject = fill(subject, &values, |s| s.replace(['\r', '\n'], " "));
        let text = fill(body, &values, str::to_owned);
        let html = html_page(
            &letter.locale,
            &escape(&subject),
            &linked(&fill(body, &values, escape), values.link, values.withdraw),
        );
        self.compose(to, &letter.locale, &subject, text, html)
    }

    fn compose(
        &self,
        to: &str,
        locale: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<Vec<u8>, LetterError> {
        let recipient: lettre::Address = to.parse().map_err(|_| LetterError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, recipient))
            .subject(subject)
            .message_id(Some(format!(
                "<{}@{}>",
                Uuid::new_v4(),
                self.message_host()
            )))
            .date_now()
            .header(ContentLanguage(locale.to_owned()))
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| LetterError::Compose(e.to_string()))?;
        Ok(message.formatted())
    }
}

/// Escapes text for HTML, quotes included (it goes into attributes too).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text as paragraphs, its links made clickable (the confirmation
/// link as a button too).
fn linked(escaped: &str, link: &str, withdraw: &str) -> String {
    let (link, withdraw) = (escape(link), escape(withdraw));
    let mut body = String::new();
    for paragraph in escaped.split("\n\n") {
        let mut p = paragraph.replace('\n', "<br>\n");
        if p.contains(&link) {
            let button = format!(
                "<a href=\"{link}\" style=\"display:inline-block;padding:10px 18px;\
                 background:#1a4d8f;color:#ffffff;text-decoration:none;border-radius:4px\">{link}</a>"
            );
            p = p.replace(&link, &button);
        }
        if withdraw != link && p.contains(&withdraw) {
            p = p.replace(&withdraw, &format!("<a href=\"{withdraw}\">{withdraw}</a>"));
        }
        body.push_str("<p>");
        body.push_str(&p);
        body.push_str("</p>\n");
    }
    body
}

fn html_page(locale: &str, title: &str, body: &str) -> String {
    let dir = if right_to_left(locale) { "rtl" } else { "ltr" };
    let lang = escape(locale);
    format!(
        "<!doctype html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head><meta charset=\"utf-8\">\
         <title>{title}</title></head>\n<body style=\"font-family:sans-serif;line-height:1.5\">\n\
         {body}</body>\n</html>\n"
    )
}

/// `Content-Language` (RFC 3282).
#[derive(Clone)]
struct ContentLanguage(String);

impl header::Header for ContentLanguage {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies.
#[derive(Clone)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    fn letterhead() -> Letterhead {
        Letterhead::new(
            "Campaign <campaign@sign.example>".parse().unwrap(),
            "https://sign.example:8443/",
            7,
        )
    }

    fn compose(locale: &str, title: &str) -> Vec<u8> {
        letterhead()
            .confirmation(&ConfirmationLetter {
                to: "signer@example.org",
                locale,
                title,
                slug: "peace",
                receipt: Uuid::nil(),
                token: "AAAAAAAAAAAAAAAAAAAAAA",
                words: None,
            })
            .unwrap()
    }

    fn rendered(mail: &OutgoingMail) -> Vec<u8> {
        let Content::Letter(letter) = &mail.content else {
            panic!("a letter: the message is composed when sent");
        };
        assert!(letter.len() < 400, "a short letter: {letter}");
        letterhead().render(&mail.recipient, letter).unwrap()
    }

    #[test]
    fn a_confirmation_has_both_parts_its_own_id_and_a_date() {
        let raw = compose("en", "Peace <now>");
        let message = MessageParser::default().parse(&raw).expect("a message");
        assert_eq!(
            message.subject(),
            Some("Please confirm your signature: Peace <now>")
        );
        let text = message.body_text(0).expect("a text part");
        let html = message.body_html(0).expect("an HTML part");
        for part in [&text, &html] {
            for expected in [
                "https://sign.example:8443/confirm/AAAAAAAAAAAAAAAAAAAAAA",
                "https://sign.example:8443/withdraw?petition=peace",
                "00000000-0000-0000-0000-000000000000",
                "within 7 days",
            ] {
                assert!(part.contains(expected), "{expected} in\n{part}");
            }
        }
        assert!(text.contains("“Peace <now>”"), "{text}");
        assert!(
            html.contains("Peace &lt;now&gt;") && !html.contains("<now>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://sign.example:8443/confirm/AAAAAAAAAAAAAAAAAAAAAA\"")
        );
        let id = message.message_id().expect("a Message-ID");
        assert!(id.ends_with("@sign.example"), "{id}");
        assert!(message.date().is_some());
        let raw = String::from_utf8_lossy(&raw);
        assert!(
            raw.contains("Content-Language: en") && raw.contains("Auto-Submitted: auto-generated")
        );
        let again = compose("en", "Peace <now>");
        let again = MessageParser::default().parse(&again).unwrap();
        assert_ne!(again.message_id(), Some(id), "each message has its own id");
    }

    #[test]
    fn each_language_speaks_its_own_and_arabic_reads_right_to_left() {
        let raw = compose("ar", "سلام");
        let message = MessageParser::default().parse(&raw).unwrap();
        assert!(message.subject().unwrap().starts_with("يرجى تأكيد توقيعك"));
        assert!(message.body_html(0).unwrap().contains("dir=\"rtl\""));
        let raw = compose("fr-CA", "Paix");
        let message = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Confirmez votre signature : Paix"));
        assert!(message.body_html(0).unwrap().contains("dir=\"ltr\""));
    }

    #[test]
    fn a_withdrawal_link_goes_to_its_own_page() {
        let mail = letterhead()
            .withdrawal(&WithdrawalLetter {
                to: "signer@example.org",
                locale: "tr",
                title: "Barış",
                receipt: Uuid::nil(),
                token: "BBBBBBBBBBBBBBBBBBBBBB",
            })
            .unwrap();
        assert_eq!(mail.kind, "withdrawal");
        let raw = rendered(&mail);
        let message = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("İmzanızı geri çekin: Barış"));
        let text = message.body_text(0).unwrap();
        assert!(
            text.contains("https://sign.example:8443/withdraw/BBBBBBBBBBBBBBBBBBBBBB"),
            "{text}"
        );
        let html = message.body_html(0).unwrap();
        assert_eq!(html.matches("<a href=").count(), 1, "{html}");
    }

    #[test]
    fn a_confirmation_letter_queued_before_the_signature_held_it_still_goes_out() {
        let letter = r#"{"kind":"confirmation","locale":"fr","title":"Paix","slug":"peace",
            "receipt":"00000000-0000-0000-0000-000000000000","token":"AAAAAAAAAAAAAAAAAAAAAA"}"#;
        let raw = letterhead().render("signer@example.org", letter).unwrap();
        let message = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Confirmez votre signature : Paix"));
        let text = message.body_text(0).unwrap();
        assert!(
            text.contains("https://sign.example:8443/confirm/AAAAAAAAAAAAAAAAAAAAAA"),
            "{text}"
        );
        assert!(Letterhead::deliverable("signer@example.org"));
        assert!(!Letterhead::deliverable("signer at example.org"));
    }

    #[test]
    fn a_petitions_own_words_replace_the_built_in_ones() {
        let raw = letterhead()
            .confirmation(&ConfirmationLetter {
                to: "signer@example.org",
                locale: "nl",
                title: "Vrede",
                slug: "peace",
                receipt: Uuid::nil(),
                token: "AAAAAAAAAAAAAAAAAAAAAA",
                words: Some((
                    "Bevestig: {title}",
                    "Klik {link} binnen {days} dagen. {unknown}",
                )),
            })
            .unwrap();
        let message = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Bevestig: Vrede"));
        let text = message.body_text(0).unwrap();
        assert!(
            text.contains("Klik https://sign.example:8443/confirm/AAAAAAAAAAAAAAAAAAAAAA binnen 7 dagen. {unknown}"),
            "{text}"
        );
    }

    #[test]
    fn a_title_cannot_add_headers() {
        let raw = compose("en", "Peace\r\nBcc: someone@example.org");
        let message = MessageParser::default().parse(&raw).unwrap();
        assert!(message.header("Bcc").is_none());
        let raw = String::from_utf8_lossy(&raw);
        let (headers, _) = raw.split_once("\r\n\r\n").expect("headers, then a body");
        assert!(!headers.contains("\r\nBcc:"), "{headers}");
    }
}
