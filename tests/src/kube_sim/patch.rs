//! The four PATCH content types: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch (with the merge keys of the served built-in types) and
//! server-side apply (approximated as create-or-strategic-merge, without field ownership).

use serde_json::{Map, Value};

use super::status::ApiError;

/// The patch kinds, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    /// The kind for a request `Content-Type` (parameters such as `charset` ignored);
    /// anything else is a 415.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(ct)),
        }
    }
}

/// RFC 6902. A failed `test` (or an operation on a missing path) is 422, as upstream's
/// `applyJSPatch` reports every apply error.
pub fn apply_json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(doc, &ops).map_err(|e| {
        let mut err = ApiError::for_code(
            422,
            format!("the server rejected our request due to an error in our request: {e}"),
        );
        err.reason = "Invalid";
        err
    })
}

/// RFC 7386.
pub fn apply_merge_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    json_patch::merge(doc, patch);
    Ok(())
}

/// How a strategic merge patch treats one list field (the `patchStrategy`/`patchMergeKey`
/// struct tags of the upstream Go types).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListStrategy {
    Replace,
    MergeByKey(&'static str),
    MergePrimitives,
}

/// The merge strategy of the list at `path` (field names from the object root) in a type.
/// Types and fields not named here replace lists whole — as Ingress `rules`/`tls` do upstream.
fn list_strategy(plural: &str, path: &[String]) -> ListStrategy {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (plural, p.as_slice()) {
        (_, ["metadata", "finalizers"]) => ListStrategy::MergePrimitives,
        (_, ["metadata", "ownerReferences"]) => ListStrategy::MergeByKey("uid"),
        ("services", ["spec", "ports"]) => ListStrategy::MergeByKey("port"),
        ("nodes", ["spec", "podCIDRs"]) => ListStrategy::MergePrimitives,
        ("nodes", ["status", "addresses"]) => ListStrategy::MergeByKey("type"),
        (_, ["status", "conditions"]) => ListStrategy::MergeByKey("type"),
        (_, [.., "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env"]) => {
            ListStrategy::MergeByKey("name")
        }
        _ => ListStrategy::Replace,
    }
}

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// A strategic merge patch on a built-in object.
pub fn apply_strategic_patch(doc: &mut Value, patch: &Value, plural: &str) -> Result<(), ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    }
    let mut path = Vec::new();
    merge_map(doc, patch, plural, &mut path)
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// The patch value with every directive removed, for places where there is nothing to
/// merge into.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| directive(e).is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(
    doc: &mut Value,
    patch: &Value,
    plural: &str,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Some(pm) = patch.as_object() else {
        *doc = patch.clone();
        return Ok(());
    };
    match directive(patch) {
        Some("replace") => {
            *doc = strip(patch);
            return Ok(());
        }
        Some("delete") => {
            *doc = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type: {other:?} in map"
            )))
        }
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    for (k, v) in pm {
        if k == "$patch" || k == "$retainKeys" || k.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let drop = v.as_array().cloned().unwrap_or_default();
            if let Some(list) = doc.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|e| !drop.contains(e));
            }
            continue;
        }
        let Some(map) = doc.as_object_mut() else {
            break;
        };
        if v.is_null() || (v.is_object() && directive(v) == Some("delete")) {
            map.remove(k);
            continue;
        }
        path.push(k.clone());
        let slot = map.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Object(_) => {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                merge_map(slot, v, plural, path)?;
            }
            Value::Array(items) => merge_list(slot, items, plural, path)?,
            scalar => *slot = scalar.clone(),
        }
        path.pop();
    }
    for (k, v) in pm {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            path.push(field.to_string());
            let strategy = list_strategy(plural, path);
            path.pop();
            if let (Some(list), Some(order)) = (
                doc.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                reorder(list, order, strategy);
            }
        }
    }
    if let Some(keep) = pm.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        if let Some(map) = doc.as_object_mut() {
            map.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
    Ok(())
}

fn key_of<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key)
}

fn merge_list(
    slot: &mut Value,
    items: &[Value],
    plural: &str,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let replace_all = items.iter().any(|e| directive(e) == Some("replace"));
    let strategy = list_strategy(plural, path);
    if replace_all || strategy == ListStrategy::Replace || !slot.is_array() {
        *slot = strip(&Value::Array(items.to_vec()));
        return Ok(());
    }
    let Some(list) = slot.as_array_mut() else {
        return Ok(());
    };
    match strategy {
        ListStrategy::MergePrimitives => {
            for e in items {
                if !list.contains(e) {
                    list.push(e.clone());
                }
            }
        }
        ListStrategy::MergeByKey(key) => {
            for e in items {
                let Some(k) = key_of(e, key) else {
                    return Err(ApiError::bad_request(format!(
                        "map: {e} does not contain declared merge key: {key}"
                    )));
                };
                let pos = list.iter().position(|o| key_of(o, key) == Some(k));
                match (directive(e), pos) {
                    (Some("delete"), Some(i)) => {
                        list.remove(i);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(i)) => merge_map(&mut list[i], e, plural, path)?,
                    (_, None) => {
                        let mut fresh = Value::Object(Map::new());
                        merge_map(&mut fresh, e, plural, path)?;
                        list.push(fresh);
                    }
                }
            }
        }
        ListStrategy::Replace => {}
    }
    Ok(())
}

/// `$setElementOrder`: listed elements first, in the given order; the rest keep their
/// relative order after them.
fn reorder(list: &mut Vec<Value>, order: &[Value], strategy: ListStrategy) {
    let same = |a: &Value, b: &Value| match strategy {
        ListStrategy::MergeByKey(key) => {
            key_of(a, key).is_some() && key_of(a, key) == key_of(b, key)
        }
        _ => a == b,
    };
    let mut out = Vec::with_capacity(list.len());
    let mut rest = std::mem::take(list);
    for o in order {
        if let Some(i) = rest.iter().position(|e| same(e, o)) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    *list = out;
}

/// Deepest `[`/`{` nesting an apply body may have. The apiserver's YAML decoder refuses
/// documents nested deeper than 10,000 levels; libyaml spends quadratic time on a long run of
/// `[` (the fuzzer found a 200,000-deep body taking minutes), so the bound here is tighter.
const MAX_APPLY_NESTING: usize = 1000;

/// Parses an apply body (YAML or JSON; YAML is a superset).
pub fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if flow_nesting(body) > MAX_APPLY_NESTING {
        return Err(ApiError::bad_request(format!(
            "error decoding YAML: exceeded max depth of {MAX_APPLY_NESTING}"
        )));
    }
    let v: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("an apply body must be an object"));
    }
    Ok(v)
}

/// The deepest bracket nesting in `body`, brackets inside quotes counted too (an
/// over-estimate only refuses bodies no client sends).
fn flow_nesting(body: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in body {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deeply_nested_apply_body_is_refused_before_the_yaml_parser_sees_it() {
        let deep = "[".repeat(200_000);
        let e = parse_apply_body(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("max depth"), "{}", e.message);
        let ok = parse_apply_body(b"{\"a\": [[1]]}").unwrap();
        assert_eq!(ok, json!({"a": [[1]]}));
    }

    #[test]
    fn service_ports_merge_by_port_and_honour_delete_and_order() {
        let mut svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/ports": [{"port": 443}, {"port": 80}, {"port": 8443}],
            "ports": [
                {"port": 80, "targetPort": 9090},
                {"port": 8443, "name": "alt"},
            ]
        }});
        apply_strategic_patch(&mut svc, &patch, "services").unwrap();
        assert_eq!(
            svc["spec"]["ports"],
            json!([
                {"name": "https", "port": 443},
                {"name": "http", "port": 80, "targetPort": 9090},
                {"name": "alt", "port": 8443}
            ])
        );
        let del = json!({"spec": {"ports": [{"port": 443, "$patch": "delete"}]}});
        apply_strategic_patch(&mut svc, &del, "services").unwrap();
        assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn ingress_rules_are_replaced_whole() {
        let mut ing = json!({"spec": {"rules": [{"host": "a"}, {"host": "b"}]}});
        apply_strategic_patch(
            &mut ing,
            &json!({"spec": {"rules": [{"host": "c"}]}}),
            "ingresses",
        )
        .unwrap();
        assert_eq!(ing["spec"]["rules"], json!([{"host": "c"}]));
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let mut o = json!({"metadata": {"finalizers": ["a", "b"]}});
        apply_strategic_patch(
            &mut o,
            &json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "ingresses",
        )
        .unwrap();
        assert_eq!(o["metadata"]["finalizers"], json!(["b", "c"]));
    }

    #[test]
    fn map_directives_replace_delete_and_retain_keys() {
        let mut o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "y": 2}});
        apply_strategic_patch(
            &mut o,
            &json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}, "spec": {"$retainKeys": ["y", "z"], "z": 3}}),
            "ingresses",
        )
        .unwrap();
        assert_eq!(o["metadata"]["labels"], json!({"c": "3"}));
        assert_eq!(o["spec"], json!({"y": 2, "z": 3}));
    }

    #[test]
    fn unknown_patch_content_type_is_415() {
        assert_eq!(
            PatchKind::from_content_type("application/json")
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchKind::Merge
        );
    }
}
