//! `labelSelector` and `fieldSelector` query parameters, parsed and matched as the apiserver
//! does (apimachinery `labels.Parse`, `fields.ParseSelector`).

use serde_json::Value;
use std::collections::BTreeMap;

use super::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(Vec<Req>);

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Result<Vec<String>, ApiError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(parse_err(s, "unbalanced parentheses"));
        }
        cur.push(c);
    }
    if depth != 0 {
        return Err(parse_err(s, "unbalanced parentheses"));
    }
    parts.push(cur);
    Ok(parts)
}

fn parse_err(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} in label selector {sel:?}"
    ))
}

/// A label key: optional DNS subdomain prefix, `/`, a name of ≤63 characters.
pub fn valid_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(super::validate::is_dns1123_subdomain);
    name_ok && prefix_ok
}

/// A label value: empty, or ≤63 alphanumerics, `-`, `_`, `.` starting and ending alphanumeric.
pub fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn parse_set(sel: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| parse_err(sel, "expected a parenthesised set of values"))?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if vals.iter().any(|v| !valid_value(v)) {
        return Err(parse_err(sel, "invalid label value"));
    }
    Ok(vals)
}

impl LabelSelector {
    pub fn parse(sel: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(sel)? {
            let p = part.trim();
            if p.is_empty() {
                return Err(parse_err(sel, "empty requirement"));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Req::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                Req::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = p.split_once("==") {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = p.split_once('=') {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                Req::NotIn(k.trim().to_string(), parse_set(sel, rest)?)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                Req::In(k.trim().to_string(), parse_set(sel, rest)?)
            } else if p.contains(['<', '>', '(', ')', ' ']) {
                return Err(parse_err(sel, "unsupported operator"));
            } else {
                Req::Exists(p.to_string())
            };
            let (key, value) = match &req {
                Req::Eq(k, v) | Req::NotEq(k, v) => (k, Some(v)),
                Req::In(k, _) | Req::NotIn(k, _) | Req::Exists(k) | Req::NotExists(k) => (k, None),
            };
            if !valid_key(key) {
                return Err(parse_err(sel, &format!("invalid label key {key:?}")));
            }
            if value.is_some_and(|v| !valid_value(v)) {
                return Err(parse_err(sel, "invalid label value"));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::NotEq(k, v) => labels.get(k) != Some(v),
            Req::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// The labels of an object as a map (non-string values are ignored).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
struct FieldReq {
    path: String,
    value: String,
    equal: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(Vec<FieldReq>);

/// Field labels a type supports beyond `metadata.name`/`metadata.namespace` (the subset of
/// the upstream per-type `GetAttrs` this project may use).
fn extra_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "secrets" => &["type"],
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reportingController",
        ],
        "nodes" => &["spec.unschedulable"],
        "namespaces" => &["status.phase"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses and checks every field against the type's supported labels (400 otherwise).
    pub fn parse(sel: &str, plural: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in sel.split(',') {
            let (path, value, equal) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{sel}'; can't understand '{part}'"
                )));
            };
            let path = path.trim();
            if path != "metadata.name"
                && path != "metadata.namespace"
                && !extra_fields(plural).contains(&path)
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {path}"
                )));
            }
            reqs.push(FieldReq {
                path: path.to_string(),
                value: value.trim().to_string(),
                equal,
            });
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let pointer = format!("/{}", r.path.replace('.', "/"));
            let pointer = if r.path == "source" {
                "/source/component".to_string()
            } else {
                pointer
            };
            let actual = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == r.value) == r.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_based_and_equality_requirements_combine() {
        let s = LabelSelector::parse("app in (web, api),tier!=db,!legacy,env").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "x"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("env", "x")])));
        let n = LabelSelector::parse("app notin (web),kubernetes.io/service-name==svc").unwrap();
        assert!(n.matches(&labels(&[("kubernetes.io/service-name", "svc")])));
        assert!(!n.matches(&labels(&[
            ("app", "web"),
            ("kubernetes.io/service-name", "svc")
        ])));
    }

    #[test]
    fn malformed_label_selectors_are_bad_requests() {
        for bad in ["app in web", "a b", "x>1", "Bad Key=1", "a=(b"] {
            let e = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    #[test]
    fn unsupported_field_label_is_rejected() {
        assert_eq!(
            FieldSelector::parse("spec.foo=1", "ingresses")
                .unwrap_err()
                .reason,
            "BadRequest"
        );
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=b", "ingresses").unwrap();
        let obj = serde_json::json!({"metadata": {"name": "a", "namespace": "c"}});
        assert!(f.matches(&obj));
    }
}
