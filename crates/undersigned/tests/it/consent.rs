//! Consenting signers for the mailing list (issue 23): `consent=updates`
//! exports only those who asked to be kept informed, with what a mailing
//! list takes, to admins and the petition's organizers; an erased signer
//! never appears, nor does one who never confirmed their address.

use serde_json::json;
use undersigned_store::Role;

use crate::exports::export;
use crate::rights::{app_with_relay, sign_and_confirm};
use crate::support::{Namespace, petition_id, problem, scoped};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_consenting_signers_are_exported_for_the_mailing_list() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns, None).await;
    let slug = app.petition("informed").await;
    let signers = [
        ("Ada Lovelace", "ada@example.org", "GB", "en", true),
        ("Leyla Məmmədova", "leyla@example.az", "AZ", "az", true),
        ("Jan de Vries", "jan@example.nl", "NL", "nl", false),
        ("Zoë Ørsted", "zoe@example.dk", "DK", "da", true),
    ];
    for (name, email, country, locale, consent) in signers {
        let body = json!({"full_name": name, "email": email, "country": country,
                          "locale": locale, "consent_updates": consent});
        assert_eq!(app.sign(&slug, &body).await.status(), 202);
    }
    let admin = app.admin_token().await;
    // Zoë asks to be erased: she never appears again.
    let erased = app
        .http
        .post(app.url("/v1/erasures"))
        .bearer_auth(&admin)
        .json(&json!({"email": "zoe@example.dk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        erased.json::<serde_json::Value>().await.unwrap(),
        json!({"erased": 1})
    );

    let id = petition_id(&ns, &slug).await;
    let organizer = app.token(scoped(Role::Organizer, id, &[])).await;
    let coordinator = app.token(scoped(Role::Coordinator, id, &["GB"])).await;
    for token in [&admin, &organizer] {
        let answer = export(&app, &slug, "format=csv&consent=updates", token).await;
        assert_eq!(answer.status(), 200);
        let csv = answer.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header.join(",").trim_start_matches('\u{feff}'),
            "email,full_name,country,locale,consented_at"
        );
        let mut rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        rows.sort();
        assert_eq!(rows.len(), 2, "{csv}");
        assert_eq!(
            rows[0][..4],
            ["ada@example.org", "Ada Lovelace", "GB", "en"]
        );
        assert_eq!(
            rows[1][..4],
            ["leyla@example.az", "Leyla Məmmədova", "AZ", "az"]
        );
        assert!(rows.iter().all(|r| r[4].ends_with('Z')), "{rows:?}");
    }
    // The consent columns in any export, and the rights around them.
    let flags = export(
        &app,
        &slug,
        "format=csv&columns=full_name,consent_updates",
        &admin,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(flags.contains("Jan de Vries,false") && flags.contains("Ada Lovelace,true"));
    let coordinators = export(&app, &slug, "format=csv&consent=updates", &coordinator).await;
    assert_eq!(coordinators.status(), 403, "not a coordinator's list");
    let without_consent = export(&app, &slug, "format=csv&columns=email", &organizer).await;
    assert_eq!(
        without_consent.status(),
        403,
        "others' addresses stay an admin's"
    );
    let wrong = export(&app, &slug, "consent=newsletter", &admin).await;
    assert_eq!(wrong.status(), 422);
    // Held back, invalidated or unconfirmed signatures are no consent.
    let all = problem(
        export(&app, &slug, "consent=updates&status=all", &admin).await,
        422,
    )
    .await;
    assert_eq!(
        all["errors"],
        json!([{"field": "status", "code": "counted_only_with_consent"}])
    );

    // On a petition that confirms by email, consent counts from the
    // confirmation, and a signer who never confirmed is not on the list.
    let confirming = app.petition_with("confirming", json!({})).await;
    let ada = json!({"full_name": "Ada Lovelace", "email": "ada@example.org", "country": "GB",
                     "consent_updates": true});
    sign_and_confirm(&app, &sink, &confirming, ada).await;
    let pending = json!({"full_name": "Pending Person", "email": "pending@example.org",
                         "country": "GB", "consent_updates": true});
    assert_eq!(app.sign(&confirming, &pending).await.status(), 202);
    let list = export(&app, &confirming, "format=csv&consent=updates", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("ada@example.org") && !list.contains("pending@example.org"),
        "{list}"
    );
    let confirmed: bool = ns
        .sql()
        .await
        .query_one(
            "SELECT confirmed_at >= signed_at FROM signatures WHERE full_name = 'Ada Lovelace'
               AND petition_id = $1",
            &[&petition_id(&ns, &confirming).await],
        )
        .await
        .unwrap()
        .get(0);
    assert!(confirmed, "the confirmation is the time of consent");
    app.stop().await;
    ns.clean().await;
}
