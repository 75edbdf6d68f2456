//! The OpenAPI 3.1 contract, served at `/v1/openapi.json`. The router's route
//! table ([`crate::router::ROUTES`]) and this document must name the same
//! operations: a unit test here compares them, and an integration test sends
//! every documented operation to a running service.

use http::{HeaderValue, Response, StatusCode, header};

use crate::reply::{Body, full};

pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn serve() -> Response<Body> {
    let mut response = full(StatusCode::OK, "application/json", DOCUMENT);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    crate::cors::public(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::router::ROUTES;

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
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
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
