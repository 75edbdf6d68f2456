//! Signers that look like the campaign's: names in the scripts its supporters
//! write (Latin with diacritics, Cyrillic, Arabic, Azerbaijani, Turkish with
//! dotted and dotless i), from the countries it runs in.

use std::fmt::Write;

const FIRST: [&str; 24] = [
    "José",
    "María",
    "Zoë",
    "Søren",
    "Ágnes",
    "François",
    "Łukasz",
    "Ilse",
    "Иван",
    "Ольга",
    "Дмитрий",
    "Анна",
    "محمد",
    "فاطمة",
    "أحمد",
    "ليلى",
    "Leyla",
    "Rəşad",
    "Günel",
    "Əli",
    "İsmail",
    "Işıl",
    "Ayşe",
    "Çağrı",
];
const LAST: [&str; 24] = [
    "Gómez",
    "Müller",
    "Ørsted",
    "Dvořák",
    "Nguyễn",
    "Ní Bhriain",
    "Kowalczyk",
    "Lefèvre",
    "Иванова",
    "Смирнов",
    "Кузнецова",
    "Попов",
    "الحسيني",
    "عبد الله",
    "المصري",
    "حداد",
    "Məmmədova",
    "Əliyev",
    "Hüseynov",
    "Qasımova",
    "Yılmaz",
    "Işık",
    "Öztürk",
    "Çelik",
];
const COUNTRIES: [&str; 16] = [
    "NL", "DE", "FR", "ES", "PL", "RU", "UA", "AZ", "TR", "EG", "MA", "JO", "IE", "DK", "VN", "BR",
];
const DOMAINS: [&str; 6] = [
    "example.org",
    "example.net",
    "mail.example",
    "gmail.com",
    "post.example.az",
    "example.com.tr",
];

/// The JSON body of signer `i`; `variant` > 0 writes the same mailbox another way,
/// as a person signing twice would (case, spaces, a +tag).
pub fn body(i: u64, variant: u32, out: &mut String) {
    out.clear();
    let first = FIRST[(i % 24) as usize];
    let last = LAST[((i / 24) % 24) as usize];
    let country = COUNTRIES[((i / 7) % 16) as usize];
    let domain = DOMAINS[(i % 6) as usize];
    let local = format!("signer.{i}");
    let email = match variant % 4 {
        0 => format!("{local}@{domain}"),
        1 => format!("{}@{}", local.to_uppercase(), domain.to_uppercase()),
        2 => format!(" {local}+again@{domain} "),
        _ => format!("{local}+{variant}@{domain}"),
    };
    let kind = if i.is_multiple_of(997) {
        "organization"
    } else {
        "person"
    };
    let _ = write!(
        out,
        r#"{{"full_name":"{first} {last}","email":"{email}","country":"{country}","signer_kind":"{kind}","organization":"Union {i}","consent_updates":{}}}"#,
        i.is_multiple_of(3)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_with_the_sign_fields() {
        let mut out = String::new();
        for i in [0, 1, 997, 123_456] {
            for v in 0..4 {
                body(i, v, &mut out);
                let value: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert!(value["email"].as_str().unwrap().contains(&format!("{i}")));
                assert_eq!(value["country"].as_str().unwrap().len(), 2);
            }
        }
    }
}
