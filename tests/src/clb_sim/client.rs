//! A small signed client for the emulator, for tests that speak raw HTTP (and need to send
//! what a well-behaved client would not: stale timestamps, wrong versions, garbage bodies).

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::limits::{CLB_VERSION, TAG_VERSION};
use super::sign::{expected_signature, utc_date, Credential};

/// One request, with every part a test may want to bend.
#[derive(Clone)]
pub struct RawRequest {
    pub service: String,
    pub action: String,
    pub version: String,
    pub region: Option<String>,
    pub body: Vec<u8>,
    /// Unix seconds; `None` = now.
    pub timestamp: Option<i64>,
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    /// Sign `x-tc-action` too (the newer documented form).
    pub sign_action: bool,
    /// Bytes sent in place of `body` after signing `body` (a tampered request).
    pub tamper_body: Option<Vec<u8>>,
}

impl RawRequest {
    pub fn clb(action: &str, params: &Value) -> Self {
        RawRequest {
            service: "clb".into(),
            action: action.into(),
            version: CLB_VERSION.into(),
            region: None,
            body: serde_json::to_vec(params).unwrap_or_default(),
            timestamp: None,
            secret_id: None,
            secret_key: None,
            sign_action: false,
            tamper_body: None,
        }
    }

    pub fn tag(action: &str, params: &Value) -> Self {
        RawRequest {
            service: "tag".into(),
            version: TAG_VERSION.into(),
            ..RawRequest::clb(action, params)
        }
    }
}

/// What came back: HTTP status, the Content-Type, and the parsed body (Null if not JSON).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl RawResponse {
    /// `Response.Error.Code`, or `None` for a success.
    pub fn error_code(&self) -> Option<&str> {
        self.body["Response"]["Error"]["Code"].as_str()
    }
    pub fn response(&self) -> &Value {
        &self.body["Response"]
    }
}

pub struct SimClient {
    base: String,
    host: String,
    secret_id: String,
    secret_key: String,
    region: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for SimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Signs requests the way the SDKs do (TC3-HMAC-SHA256), for a client over HTTP or a driver
/// calling the router in process (the fuzzer).
pub struct Signer<'a> {
    pub host: &'a str,
    pub secret_id: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
}

impl Signer<'_> {
    /// The headers of `req`, `Authorization` included; the request's own credential, region
    /// and timestamp win over the signer's.
    pub fn headers(&self, req: &RawRequest) -> Vec<(&'static str, String)> {
        let ts = req.timestamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(self.host) {
            h.insert("host", v);
        }
        if let Ok(v) = HeaderValue::from_str(&req.action) {
            h.insert("x-tc-action", v);
        }
        let mut signed = vec!["content-type".to_string(), "host".to_string()];
        if req.sign_action {
            signed.push("x-tc-action".into());
        }
        let cred = Credential {
            secret_id: req
                .secret_id
                .clone()
                .unwrap_or_else(|| self.secret_id.to_string()),
            date: utc_date(ts).unwrap_or_default(),
            service: req.service.clone(),
            signed_headers: signed.clone(),
            signature: String::new(),
        };
        let key = req
            .secret_key
            .clone()
            .unwrap_or_else(|| self.secret_key.to_string());
        let sig =
            expected_signature(&key, &cred, &ts.to_string(), &h, &req.body).unwrap_or_default();
        let auth = format!(
            "TC3-HMAC-SHA256 Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
            cred.secret_id,
            cred.date,
            cred.service,
            signed.join(";"),
            sig
        );
        vec![
            ("Host", self.host.to_string()),
            ("Content-Type", "application/json".to_string()),
            ("Authorization", auth),
            ("X-TC-Action", req.action.clone()),
            ("X-TC-Version", req.version.clone()),
            ("X-TC-Timestamp", ts.to_string()),
            (
                "X-TC-Region",
                req.region
                    .clone()
                    .unwrap_or_else(|| self.region.to_string()),
            ),
        ]
    }
}

impl SimClient {
    pub fn new(handle: &super::SimHandle) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = handle.config();
        SimClient {
            base: handle.url(),
            host: handle.addr().to_string(),
            secret_id: cfg.secret_id.clone(),
            secret_key: cfg.secret_key.clone(),
            region: cfg.region.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// A CLB call; panics on transport errors (test helper).
    pub async fn clb(&self, action: &str, params: Value) -> RawResponse {
        self.send(RawRequest::clb(action, &params))
            .await
            .expect("transport")
    }

    /// A Tag call; panics on transport errors (test helper).
    pub async fn tag(&self, action: &str, params: Value) -> RawResponse {
        self.send(RawRequest::tag(action, &params))
            .await
            .expect("transport")
    }

    pub async fn send(&self, req: RawRequest) -> Result<RawResponse, reqwest::Error> {
        let signer = Signer {
            host: &self.host,
            secret_id: &self.secret_id,
            secret_key: &self.secret_key,
            region: &self.region,
        };
        let mut post = self.http.post(format!("{}/", self.base));
        for (name, value) in signer.headers(&req) {
            post = post.header(name, value);
        }
        let resp = post
            .body(req.tamper_body.clone().unwrap_or_else(|| req.body.clone()))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = resp.bytes().await?;
        Ok(RawResponse {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// `GET /_sim/<path>` as JSON.
    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/_sim/{path}", self.base))
            .send()
            .await
            .expect("transport");
        r.json().await.unwrap_or(Value::Null)
    }

    /// `POST /_sim/<path>` with a JSON body; returns the status and body.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/_sim/{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("transport");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}
