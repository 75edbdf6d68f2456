//! Email addresses and their canonical form, which decides "one signature per person".
//!
//! The canonical local part is compatibility-composed (NFKC: `ａdmin` is
//! `admin`), lower-cased, and then each non-ASCII character that Unicode's
//! confusables data (UTS #39) gives a single ASCII character as its prototype
//! becomes that character: the Cyrillic `а` of `аdmin` is the `a` of `admin`.
//! Otherwise one person could sign again and again with addresses that read
//! alike. ASCII characters are never mapped (their skeletons can change them,
//! `m` into `rn`), so every ASCII address keeps the identity key it always had.
//! A character that looks like no single ASCII one stays (`ж`; `ö`, which is
//! `o` and a diaeresis), and `б` looks like `6`, not `b`: `борис@` and
//! `boris@` remain two signers. The domain needs none of this: IDNA's own
//! mapping (UTS #46) already folds `ｅｘａｍｐｌｅ．org` to `example.org`.

use unicode_normalization::UnicodeNormalization;
use unicode_security::skeleton;

/// A syntactically sane email address.
///
/// `as_given` is what the signer typed (trimmed, domain in ASCII) and is kept for
/// contacting them; `canonical` folds the variants one person can type for one
/// mailbox and is only ever used, hashed, as their identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    as_given: String,
    canonical: String,
}

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    /// Errors are codes: `required`, `too_long`, `invalid`.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("required");
        }
        if trimmed.len() > MAX_LEN {
            return Err("too_long");
        }
        let (local, domain) = trimmed.split_once('@').ok_or("invalid")?;
        if !local_is_sane(local) || domain.contains('@') {
            return Err("invalid");
        }
        let domain = idna::domain_to_ascii(domain).map_err(|_| "invalid")?;
        if !domain_is_sane(&domain) {
            return Err("invalid");
        }
        // Nearly every address is ASCII, which composing leaves alone.
        let local: String = if local.is_ascii() {
            local.to_owned()
        } else {
            local.nfc().collect()
        };
        // Composing and the domain's ASCII form can lengthen what was
        // measured above (U+0958 is two characters composed).
        if local.len() > MAX_LOCAL_LEN || local.len() + 1 + domain.len() > MAX_LEN {
            return Err("too_long");
        }
        let canonical = canonical_address(&local, &domain).ok_or("invalid")?;
        Ok(Self {
            as_given: joined(&local, &domain),
            canonical,
        })
    }

    /// The address as the signer typed it, for contacting them.
    pub fn as_given(&self) -> &str {
        &self.as_given
    }

    /// The identity form: case-folded, `+tag` dropped, Gmail dots and alias folded.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The canonical domain (lower case, ASCII, `googlemail.com` folded to `gmail.com`).
    pub fn domain(&self) -> &str {
        self.canonical
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

fn local_is_sane(local: &str) -> bool {
    local.len() <= MAX_LOCAL_LEN && local_reads(local)
}

/// Dots only between characters; no space, control or character RFC 5322
/// quotes; no length bound (compatibility composition can lengthen a part).
fn local_reads(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '(' | ')' | '<' | '>' | ',' | ';' | ':' | '\\' | '"' | '[' | ']'
                )
        })
}

fn domain_is_sane(domain: &str) -> bool {
    let label_reads = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    domain.len() <= 253
        && domain.split('.').count() >= 2
        && domain.split('.').all(label_reads)
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// `local@domain`, allocated once at its length.
fn joined(local: &str, domain: &str) -> String {
    let mut address = String::with_capacity(local.len() + 1 + domain.len());
    address.push_str(local);
    address.push('@');
    address.push_str(domain);
    address
}

/// None when the folded local part no longer reads as one: NFKC turns a
/// spacing accent (`´`) into a space and a combining mark, and a fullwidth
/// `＠` into `@`. Such a key would not read back as itself, and no mail
/// system hands out such an address.
fn canonical_address(local: &str, domain: &str) -> Option<String> {
    // Nearly every address is ASCII, which NFKC and look-alikes leave alone.
    let folded = if local.is_ascii() {
        local.to_ascii_lowercase()
    } else {
        let composed: String = local.nfkc().collect();
        // Composed again after the look-alikes: a Cyrillic а with a combining
        // acute becomes a Latin a with it, which is the á another signer typed.
        composed
            .to_lowercase()
            .chars()
            .map(ascii_look_alike)
            .nfc()
            .collect()
    };
    if !local_reads(&folded) || folded.contains('@') {
        return None;
    }
    let untagged = match folded.split_once('+') {
        Some((base, _tag)) if !base.is_empty() => base,
        _ => folded.as_str(),
    };
    if domain == "gmail.com" || domain == "googlemail.com" {
        let undotted: String = untagged.chars().filter(|&c| c != '.').collect();
        Some(joined(&undotted, "gmail.com"))
    } else {
        Some(joined(untagged, domain))
    }
}

/// The ASCII character a non-ASCII one is confusable with, when its UTS #39
/// prototype is exactly one (lower case, as the rest of the local part);
/// anything else as it is.
fn ascii_look_alike(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let mut buffer = [0; 4];
    let mut prototype = skeleton(c.encode_utf8(&mut buffer));
    match (prototype.next(), prototype.next()) {
        (Some(a), None) if a.is_ascii() => a.to_ascii_lowercase(),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found reading the `email` fuzz target's properties: what is kept reads again, and a
    /// look-alike with a combining mark is the composed letter's identity.
    #[test]
    fn what_is_kept_reads_again_and_look_alikes_compose() {
        let long = format!("{}@example.org", "\u{958}".repeat(21));
        assert_eq!(Email::parse(&long).map(|_| ()), Err("too_long"));
        let cyrillic = Email::parse("\u{430}\u{301}@example.org").unwrap();
        let latin = Email::parse("\u{e1}@example.org").unwrap();
        assert_eq!(cyrillic.canonical(), latin.canonical());
        let again = Email::parse(cyrillic.canonical()).unwrap();
        assert_eq!(again.canonical(), cyrillic.canonical());
    }

    fn canonical(s: &str) -> String {
        Email::parse(s).unwrap().canonical().to_owned()
    }

    #[test]
    fn folds_the_variants_of_one_mailbox() {
        assert_eq!(
            canonical("  Ada.Lovelace+news@Example.ORG "),
            "ada.lovelace@example.org"
        );
        assert_eq!(canonical("a.da.love+x@googlemail.com"), "adalove@gmail.com");
        assert_eq!(canonical("ADALOVE@GMAIL.COM"), "adalove@gmail.com");
        assert_eq!(canonical("ÖZGÜR@bücher.de"), "özgür@xn--bcher-kva.de");
        assert_eq!(canonical("+only@example.org"), "+only@example.org");
    }

    /// Found by the `email` fuzz target in CI: `´` composes to a space and
    /// a combining acute, so its key had a space and read back as another.
    #[test]
    fn a_local_part_that_folds_into_no_address_is_refused() {
        for address in [
            "\u{b4}@example.org",
            "a\u{ff20}b@example.org",
            "\u{ff0e}a@example.org",
        ] {
            assert_eq!(Email::parse(address), Err("invalid"), "{address}");
        }
    }

    /// Every character of the Basic Multilingual Plane, alone and between
    /// two letters: the address is refused, or its key reads as itself.
    #[test]
    fn every_key_of_one_character_reads_as_itself() {
        for c in (0..=0xFFFF).filter_map(char::from_u32) {
            for address in [format!("{c}@example.org"), format!("a{c}b@gmail.com")] {
                let Ok(email) = Email::parse(&address) else {
                    continue;
                };
                let again = Email::parse(email.canonical()).map(|e| e.canonical().to_owned());
                assert_eq!(again.as_deref(), Ok(email.canonical()), "{address:?}");
            }
        }
    }

    #[test]
    fn composes_the_local_part() {
        assert_eq!(
            canonical("jose\u{301}@example.org"),
            canonical("josé@example.org")
        );
    }

    #[test]
    fn look_alike_local_parts_are_one_mailbox() {
        let ascii = canonical("admin@example.org");
        assert_eq!(canonical("\u{FF41}dmin@example.org"), ascii, "fullwidth a");
        assert_eq!(canonical("\u{430}dmin@example.org"), ascii, "Cyrillic a");
        assert_eq!(canonical("\u{410}DMIN@example.org"), ascii, "Cyrillic A");
        assert_eq!(canonical("\u{3BF}\u{43E}ps@gmail.com"), "oops@gmail.com");
        assert_eq!(
            canonical("admin@\u{FF45}\u{FF58}\u{FF41}mple\u{FF0E}org"),
            ascii,
            "fullwidth domain"
        );
    }

    #[test]
    fn ascii_and_unconfusable_local_parts_stay_as_they_were() {
        // Skeletons would turn `m` into `rn` and `0` into `O`: ASCII is never mapped.
        assert_eq!(canonical("m0m@example.org"), "m0m@example.org");
        assert_ne!(canonical("rn@example.org"), canonical("m@example.org"));
        // `б` is confusable with `6`, not with `b`; `и` with no ASCII letter.
        assert_ne!(canonical("борис@example.ru"), canonical("boris@example.ru"));
        assert_ne!(canonical("борис@example.ru"), canonical("брис@example.ru"));
        assert_ne!(canonical("özgür@example.de"), canonical("ozgur@example.de"));
        // What was typed is kept for contact.
        let e = Email::parse("\u{430}dmin@example.org").unwrap();
        assert_eq!(e.as_given(), "\u{430}dmin@example.org");
    }

    #[test]
    fn keeps_what_was_typed_for_contact() {
        let e = Email::parse(" Ada+news@Bücher.de ").unwrap();
        assert_eq!(e.as_given(), "Ada+news@xn--bcher-kva.de");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "plain",
            "@example.org",
            "a@",
            "a@b",
            "a b@example.org",
            "a@@example.org",
            "a@exa_mple.org",
            ".a@example.org",
            "a..b@example.org",
            "a@example.123",
            "a@-example.org",
            "<a>@example.org",
        ] {
            assert_eq!(Email::parse(bad), Err("invalid"), "{bad}");
        }
        assert_eq!(Email::parse("  "), Err("required"));
        assert_eq!(
            Email::parse(&format!("{}@example.org", "a".repeat(250))),
            Err("too_long")
        );
    }
}
