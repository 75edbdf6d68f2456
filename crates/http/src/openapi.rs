//! The OpenAPI 3.1 contract, served at `/v1/openapi.json`. The route table
//! ([`crate::routes::ROUTES`]) and this document must name the same
//! operations: a unit test here compares them, and an integration test sends
//! every documented operation to a running service.

use http::{HeaderValue, StatusCode, header};

use crate::call::{Answer, Call};
use crate::reply::full;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn serve(_: Call<'_>) -> Answer {
    let mut response = full(StatusCode::OK, "application/json", DOCUMENT);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    crate::cors::public(response.headers_mut());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::routes::documented_operations;

    #[test]
    fn the_document_and_the_router_name_the_same_operations() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = documented_operations()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented but not routed: {unrouted:?}"
        );
        // Every reference resolves.
        let text = DOCUMENT;
        for reference in text.split("\"$ref\": \"#/components/").skip(1) {
            let path: Vec<&str> = reference.split('"').next().unwrap().split('/').collect();
            assert!(
                !doc["components"][path[0]][path[1]].is_null(),
                "dangling $ref {path:?}"
            );
        }
    }

    /// What the router checks before a handler runs is what the document
    /// promises: a bearer token, and the answers 401 and 403 (and 404 where
    /// the petition is looked up first).
    #[test]
    fn the_document_states_the_rights_the_route_table_checks() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        for route in crate::routes::ROUTES.iter().filter(|r| r.documented) {
            let operation = &doc["paths"][route.path][route.verb.name().to_lowercase()];
            let at = format!("{} {}", route.verb.name(), route.path);
            if route.handler.checks_a_token() {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"bearer": []}]),
                    "{at} asks for a token"
                );
                for status in ["401", "403"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{at} answers {status}"
                    );
                }
            }
            if route.handler.looks_up_the_petition() {
                assert!(
                    operation["responses"]["404"].is_object(),
                    "{at} answers 404"
                );
            }
        }
    }

    /// A body the service reads may be malformed (400), too large (413) or
    /// of another media type (415): each is a problem+json the document names.
    #[test]
    fn every_body_read_documents_its_refusals() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        for (path, operations) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let Some(content) = operation["requestBody"]["content"].as_object() else {
                    continue;
                };
                let structured = content.keys().any(|media| media != "text/csv");
                for status in ["400", "413", "415"] {
                    if status == "400" && !structured {
                        continue;
                    }
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} answers {status}"
                    );
                }
            }
        }
    }

    /// The countries the document lists are the ones the service reads.
    #[test]
    fn the_documented_countries_are_the_services() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let documented: Vec<&str> = doc["components"]["schemas"]["Country"]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|c| c.as_str().expect("a string"))
            .collect();
        assert_eq!(documented, undersigned_domain::Country::codes());
    }

    #[test]
    fn a_petition_change_documents_exactly_the_fields_it_takes() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let documented: BTreeSet<&str> =
            doc["components"]["schemas"]["PetitionChange"]["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
        let taken: BTreeSet<&str> = crate::v1::petitions::CHANGEABLE.into_iter().collect();
        assert_eq!(documented, taken);
    }
}
