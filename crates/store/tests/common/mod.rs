//! A scratch database for each test, migrated by the store itself.

#![allow(dead_code)]

use tokio_postgres::NoTls;
use undersigned_domain::{NewPetition, NewPetitionInput, WordingInput};
use undersigned_store::{Actor, AuditEntry, Store};
use uuid::Uuid;

pub struct Db {
    pub url: String,
    pub name: String,
}

impl Db {
    pub async fn new() -> Self {
        let name = format!("us_test_{}", Uuid::new_v4().simple());
        Self {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }

    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn drop(self) {
        let (admin, connection) =
            tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/postgres", NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

/// A fresh migrated database, its store, and an open petition's id.
pub async fn setup() -> (Db, Store, i64) {
    let db = Db::new().await;
    let store = Store::open(&db.url, 2).await.unwrap();
    let p = petition(&store).await;
    (db, store, p)
}

pub async fn petition(store: &Store) -> i64 {
    let p = NewPetition::parse(NewPetitionInput {
        slug: Some("writer".into()),
        wording: WordingInput {
            title: Some("Writer".into()),
            text: Some("Text".into()),
            ask: None,
        },
        goal: Some(10),
        locale: None,
        ..Default::default()
    })
    .unwrap();
    let audit = AuditEntry::new(&Actor::default(), "petition.create", Default::default());
    store.create_petition(&p, audit).await.unwrap().id
}
