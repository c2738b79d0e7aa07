//! `openapi.yaml` matches the router, and real responses match its schemas.

mod common;

use common::*;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Value};

fn openapi() -> Value {
    let text =
        std::fs::read_to_string(format!("{}/openapi.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn routes_and_spec_paths_are_the_same_set() {
    let doc = openapi();
    let mut spec: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                spec.push((method.clone(), path.clone()));
            }
        }
    }
    let mut routes: Vec<(String, String)> = candor::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.replace("{*path}", "{path}")))
        .collect();
    spec.sort();
    routes.sort();
    assert_eq!(spec, routes);
}

/// A validator for one component schema, resolving `./schemas/…` against the schema files.
fn component(name: &str) -> Validator {
    let mut registry = Registry::new();
    for (file, text) in candor::statement::schema::FILES {
        let v: Value = serde_json::from_str(text).unwrap();
        registry = registry
            .add(format!("https://candor.dev/schemas/{file}"), v)
            .unwrap();
    }
    let registry = registry
        .add("https://candor.dev/openapi.yaml", openapi())
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(&registry)
        .build(
            &json!({"$ref": format!("https://candor.dev/openapi.yaml#/components/schemas/{name}")}),
        )
        .unwrap()
}

fn check(name: &str, v: &Value) {
    let validator = component(name);
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not match openapi.yaml: {errors:?}\n{v}"
    );
}

#[tokio::test]
async fn responses_match_the_openapi_schemas() {
    let log = TestLog::new().await;
    let mut op = log.operator();
    let mut acme = log.register(&mut op, "acme.example").await;
    let n = acme.next("request", user_data("DE"));
    let id = serde_json::from_str::<Value>(n.lines().next().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = log.post(&n).await;
    check("Receipt", &r.json());
    let bad = acme.body("request", user_data("DE"));
    let r = log
        .post_batch(&[acme.next("request", takedown("FR")), acme.sign(&bad)])
        .await;
    check("BatchResult", &r.json());
    check("Entry", &log.get("/api/v1/entries/2").await.json());
    check(
        "EntryPage",
        &log.get("/api/v1/entries?start=0&limit=10").await.json(),
    );
    check("PublisherList", &log.get("/api/v1/publishers").await.json());
    check(
        "Publisher",
        &log.get("/api/v1/publishers/acme.example").await.json(),
    );
    check("Publisher", &log.get("/api/v1/operator").await.json());
    check(
        "StatementView",
        &log.get(&format!("/api/v1/publishers/acme.example/statements/{id}"))
            .await
            .json(),
    );
    check(
        "InclusionProof",
        &log.get("/api/v1/proof/inclusion?index=1&size=3")
            .await
            .json(),
    );
    check(
        "ConsistencyProof",
        &log.get("/api/v1/proof/consistency?from=1&to=3")
            .await
            .json(),
    );
    for uri in [
        "/api/v1/entries/999",
        "/api/v1/proof/inclusion?index=9",
        "/nope",
        "/tile/0/1",
    ] {
        let r = log.get(uri).await;
        check("Problem", &r.json());
    }
    let r = log.post(&acme.sign(&acme.body("request", json!({})))).await;
    check("Problem", &r.json());
}

#[test]
fn the_schemas_do_refuse_wrong_shapes() {
    assert!(!component("Receipt").is_valid(&json!({"index": 1})));
    assert!(!component("Publisher").is_valid(&json!({"id": "a", "status": "sleeping"})));
    assert!(component("Head").is_valid(&json!({"seq": 0, "hash": null})));
}
