//! The HTTP envelope of an event function behind a function URL (or the retired API gateway):
//! `{"httpMethod","path","headers":{…},"body":"<string>","queryString":{…}}`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::DecodeError;

/// An HTTP request carried inside an SCF event. Headers may hold the bearer token, so Debug
/// shows their names only.
pub struct HttpEnvelope {
    pub method: String,
    pub path: String,
    /// Header names lower-cased (HTTP names are case-insensitive; the docs show lower case).
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpEnvelope {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl fmt::Debug for HttpEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEnvelope")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

pub(super) fn decode(map: &Map<String, Value>) -> Result<HttpEnvelope, DecodeError> {
    let method = map
        .get("httpMethod")
        .and_then(Value::as_str)
        .ok_or(DecodeError::Envelope("`httpMethod` is not a string"))?
        .to_ascii_uppercase();
    let path = map
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let headers = match map.get("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(h)) => h
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string())))
            .collect(),
        Some(_) => return Err(DecodeError::Envelope("`headers` is not an object")),
    };
    let raw = match map.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(DecodeError::Envelope("`body` is not a string")),
    };
    // API gateway marks binary bodies; the function URL has no such flag and sends text.
    let body = if map.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| DecodeError::Envelope("`body` is not valid base64"))?
    } else {
        raw.into_bytes()
    };
    Ok(HttpEnvelope {
        method,
        path,
        headers,
        body,
    })
}
