//! Just enough OpenAPI for kubectl. `kubectl apply` refuses to run when it cannot download
//! OpenAPI ("failed to download openapi ... --validate=false"), so kube-sim serves:
//! - `/openapi/v3` and one document per group-version whose PATCH operations declare the
//!   `fieldValidation` parameter — kubectl ≥1.27 then leaves validation to the server;
//! - `/openapi/v2` as a minimal Swagger document without definitions (protobuf for
//!   client-go's discovery client, JSON otherwise) — older kubectl then finds no schema for
//!   the kind and skips client-side validation, as it does for CRDs.
//!
//! Neither carries schemas, so kubectl computes strategic merge patches from its compiled-in
//! Go types, exactly as it does against a server without OpenAPI.

use serde_json::{json, Value};

use super::discovery::SERVER_VERSION;
use super::resources::{group_versions, TYPES};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash=kube-sim") }),
        );
    }
    json!({ "paths": paths })
}

fn param(name: &str, location: &str) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": location == "path",
        "schema": {"type": "string", "uniqueItems": true},
    })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`.
pub fn v3_group_version(group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = TYPES
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for t in types {
        let base = format!("/{}", gv_path(group, version));
        let item = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        let mut params = vec![
            param("name", "path"),
            param("dryRun", "query"),
            param("fieldManager", "query"),
            param("fieldValidation", "query"),
            param("force", "query"),
        ];
        if t.namespaced {
            params.push(param("namespace", "path"));
        }
        paths.insert(
            item,
            json!({
                "patch": {
                    "operationId": format!("patch{}", t.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
                    "responses": {"200": {"description": "OK"}},
                },
                "parameters": params,
            }),
        );
    }
    let (major, minor) = SERVER_VERSION;
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v2` as JSON.
pub fn v2_json() -> Value {
    let (major, minor) = SERVER_VERSION;
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": {},
        "definitions": {},
    })
}

/// `/openapi/v2` as the gnostic `openapi_v2.Document` protobuf client-go asks for: field 1
/// `swagger` and field 2 `info {title = 1, version = 2}`, nothing else.
pub fn v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push((number << 3) | 2);
        // Every string here is far below 128 bytes: a one-byte varint length.
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    let (major, minor) = SERVER_VERSION;
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, format!("v{major}.{minor}.0").as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}
