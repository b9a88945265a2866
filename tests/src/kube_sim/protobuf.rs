//! Request bodies in Kubernetes protobuf, for the kinds kubectl's typed `create`
//! subcommands send that way (`kubectl create namespace`, `kubectl create secret ...`,
//! `create serviceaccount|role|rolebinding|token`, `auth can-i`).
//! Envelope: the magic `k8s\0`, then `runtime.Unknown {typeMeta = 1 {apiVersion = 1,
//! kind = 2}, raw = 2}`; `raw` is the object's generated.proto message. Only the fields a
//! client sets on create are decoded; other kinds are refused with 415.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::status::ApiError;

const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed() -> ApiError {
    ApiError::bad_request("malformed protobuf body")
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(malformed)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed())
    }

    fn next(&mut self) -> Option<Result<(u64, Wire<'a>), ApiError>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some((|| {
            let key = self.varint()?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.pos += 8;
                    Wire::Fixed
                }
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
                    let end = self.pos.checked_add(len).ok_or_else(malformed)?;
                    let bytes = self.buf.get(self.pos..end).ok_or_else(malformed)?;
                    self.pos = end;
                    Wire::Bytes(bytes)
                }
                5 => {
                    self.pos += 4;
                    Wire::Fixed
                }
                _ => return Err(malformed()),
            };
            if self.pos > self.buf.len() {
                return Err(malformed());
            }
            Ok((key >> 3, wire))
        })())
    }
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed())
}

/// A `map<string, X>` entry: key = 1, value = 2.
fn map_entry(b: &[u8]) -> Result<(String, Vec<u8>), ApiError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Vec::new());
    while let Some(f) = r.next() {
        match f? {
            (1, Wire::Bytes(x)) => k = string(x)?,
            (2, Wire::Bytes(x)) => v = x.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut r = Reader::new(b);
    while let Some(f) = r.next() {
        match f? {
            // gogo-protobuf writes empty strings; JSON (omitempty) would not carry them.
            (_, Wire::Bytes([])) => {}
            (1, Wire::Bytes(x)) => _ = m.insert("name".into(), json!(string(x)?)),
            (2, Wire::Bytes(x)) => _ = m.insert("generateName".into(), json!(string(x)?)),
            (3, Wire::Bytes(x)) => _ = m.insert("namespace".into(), json!(string(x)?)),
            (5, Wire::Bytes(x)) => _ = m.insert("uid".into(), json!(string(x)?)),
            (6, Wire::Bytes(x)) => _ = m.insert("resourceVersion".into(), json!(string(x)?)),
            (11, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                labels.insert(k, json!(string(&v)?));
            }
            (12, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                annotations.insert(k, json!(string(&v)?));
            }
            (14, Wire::Bytes(x)) => finalizers.push(json!(string(x)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

fn namespace(raw: &[u8], obj: &mut Value) -> Result<(), ApiError> {
    let mut r = Reader::new(raw);
    while let Some(f) = r.next() {
        match f? {
            (1, Wire::Bytes(x)) => obj["metadata"] = object_meta(x)?,
            (2, Wire::Bytes(x)) => {
                let mut fins = Vec::new();
                let mut s = Reader::new(x);
                while let Some(g) = s.next() {
                    if let (1, Wire::Bytes(y)) = g? {
                        fins.push(json!(string(y)?));
                    }
                }
                if !fins.is_empty() {
                    obj["spec"] = json!({ "finalizers": fins });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn secret(raw: &[u8], obj: &mut Value) -> Result<(), ApiError> {
    let mut data = Map::new();
    let mut string_data = Map::new();
    let mut r = Reader::new(raw);
    while let Some(f) = r.next() {
        match f? {
            (1, Wire::Bytes(x)) => obj["metadata"] = object_meta(x)?,
            (2, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (3, Wire::Bytes(x)) if !x.is_empty() => obj["type"] = json!(string(x)?),
            (4, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                string_data.insert(k, json!(string(&v)?));
            }
            (5, Wire::Varint(v)) => obj["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        obj["stringData"] = Value::Object(string_data);
    }
    Ok(())
}

/// How one field of a generated.proto message maps to JSON.
enum Field {
    Str(&'static str),
    Strs(&'static str),
    Int(&'static str),
    Meta,
    Msg(&'static str, &'static [(u64, Field)]),
    Msgs(&'static str, &'static [(u64, Field)]),
}

/// Decodes a message by its field table (unknown fields are skipped, as proto does).
fn message(raw: &[u8], fields: &[(u64, Field)], obj: &mut Value) -> Result<(), ApiError> {
    let mut r = Reader::new(raw);
    while let Some(f) = r.next() {
        let (n, wire) = f?;
        let Some((_, field)) = fields.iter().find(|(k, _)| *k == n) else {
            continue;
        };
        match (field, wire) {
            // gogo-protobuf writes empty optional strings; JSON (omitempty) would not.
            (Field::Str(_), Wire::Bytes([])) => {}
            (Field::Str(k), Wire::Bytes(x)) => obj[*k] = json!(string(x)?),
            (Field::Strs(k), Wire::Bytes(x)) => push(obj, k, json!(string(x)?)),
            (Field::Int(k), Wire::Varint(v)) => obj[*k] = json!(v as i64),
            (Field::Meta, Wire::Bytes(x)) => obj["metadata"] = object_meta(x)?,
            (Field::Msg(k, sub), Wire::Bytes(x)) => {
                let mut v = json!({});
                message(x, sub, &mut v)?;
                obj[*k] = v;
            }
            (Field::Msgs(k, sub), Wire::Bytes(x)) => {
                let mut v = json!({});
                message(x, sub, &mut v)?;
                push(obj, k, v);
            }
            _ => return Err(malformed()),
        }
    }
    Ok(())
}

fn push(obj: &mut Value, key: &str, v: Value) {
    match obj.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.push(v),
        None => obj[key] = json!([v]),
    }
}

/// k8s.io/api generated.proto field numbers of the kinds below.
const POLICY_RULE: &[(u64, Field)] = &[
    (1, Field::Strs("verbs")),
    (2, Field::Strs("apiGroups")),
    (3, Field::Strs("resources")),
    (4, Field::Strs("resourceNames")),
    (5, Field::Strs("nonResourceURLs")),
];
const ROLE: &[(u64, Field)] = &[(1, Field::Meta), (2, Field::Msgs("rules", POLICY_RULE))];
const SUBJECT: &[(u64, Field)] = &[
    (1, Field::Str("kind")),
    (2, Field::Str("apiGroup")),
    (3, Field::Str("name")),
    (4, Field::Str("namespace")),
];
const ROLE_REF: &[(u64, Field)] = &[
    (1, Field::Str("apiGroup")),
    (2, Field::Str("kind")),
    (3, Field::Str("name")),
];
const ROLE_BINDING: &[(u64, Field)] = &[
    (1, Field::Meta),
    (2, Field::Msgs("subjects", SUBJECT)),
    (3, Field::Msg("roleRef", ROLE_REF)),
];
const SERVICE_ACCOUNT: &[(u64, Field)] = &[(1, Field::Meta)];
const TOKEN_REQUEST: &[(u64, Field)] = &[
    (1, Field::Meta),
    (
        2,
        Field::Msg(
            "spec",
            &[
                (1, Field::Strs("audiences")),
                (4, Field::Int("expirationSeconds")),
            ],
        ),
    ),
];
const RESOURCE_ATTRIBUTES: &[(u64, Field)] = &[
    (1, Field::Str("namespace")),
    (2, Field::Str("verb")),
    (3, Field::Str("group")),
    (4, Field::Str("version")),
    (5, Field::Str("resource")),
    (6, Field::Str("subresource")),
    (7, Field::Str("name")),
];
const NON_RESOURCE_ATTRIBUTES: &[(u64, Field)] =
    &[(1, Field::Str("path")), (2, Field::Str("verb"))];
const SELF_SUBJECT_ACCESS_REVIEW: &[(u64, Field)] = &[
    (1, Field::Meta),
    (
        2,
        Field::Msg(
            "spec",
            &[
                (1, Field::Msg("resourceAttributes", RESOURCE_ATTRIBUTES)),
                (
                    2,
                    Field::Msg("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES),
                ),
            ],
        ),
    ),
];

/// The JSON form of a protobuf request body.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut r = Reader::new(rest);
    while let Some(f) = r.next() {
        match f? {
            (1, Wire::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some(g) = t.next() {
                    match g? {
                        (1, Wire::Bytes(x)) => api_version = string(x)?,
                        (2, Wire::Bytes(x)) => kind = string(x)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = json!({ "apiVersion": api_version, "kind": kind, "metadata": {} });
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(raw, &mut obj)?,
        ("v1", "Secret") => secret(raw, &mut obj)?,
        ("v1", "ServiceAccount") => message(raw, SERVICE_ACCOUNT, &mut obj)?,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => message(raw, ROLE, &mut obj)?,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => {
            message(raw, ROLE_BINDING, &mut obj)?
        }
        ("authentication.k8s.io/v1", "TokenRequest") => message(raw, TOKEN_REQUEST, &mut obj)?,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            message(raw, SELF_SUBJECT_ACCESS_REVIEW, &mut obj)?
        }
        _ => {
            return Err(ApiError::unsupported_body(&format!(
                "application/vnd.kubernetes.protobuf for {api_version} {kind}"
            )))
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let meta = [
            field(1, b"tls"),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &[field(1, b"tls.key"), field(2, b"KEY")].concat()),
            field(3, b"kubernetes.io/tls"),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "tls");
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        assert_eq!(v["data"]["tls.key"], "S0VZ");
        assert_eq!(v["type"], "kubernetes.io/tls");
    }

    #[test]
    fn truncated_or_foreign_bodies_are_refused() {
        assert_eq!(decode(b"k8s\0\x0a\x05ab").unwrap_err().code, 400);
        assert_eq!(decode(b"nope").unwrap_err().code, 400);
        let tm = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm)].concat();
        assert_eq!(decode(&body).unwrap_err().code, 415);
    }
}
