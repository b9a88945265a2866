//! TC3-HMAC-SHA256 verification, written independently of the function's signer so that the
//! two cannot share a bug; the official Python SDK judges both.

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The parts of an `Authorization: TC3-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a header could not be read as a TC3 authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<Credential, Malformed> {
    let rest = value
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| Malformed("the algorithm must be TC3-HMAC-SHA256".into()))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| Malformed("Credential is missing".into()))?;
    let signed = signed.ok_or_else(|| Malformed("SignedHeaders is missing".into()))?;
    let signature = signature.ok_or_else(|| Malformed("Signature is missing".into()))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 4 || scope[3] != "tc3_request" || scope.iter().any(|s| s.is_empty()) {
        return Err(Malformed(
            "Credential must be SecretId/Date/Service/tc3_request".into(),
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(|h| h.to_ascii_lowercase()).collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(Malformed("SignedHeaders has an empty name".into()));
    }
    Ok(Credential {
        secret_id: scope[0].to_string(),
        date: scope[1].to_string(),
        service: scope[2].to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The signature the sender should have computed, from the headers and body as received.
/// `None` when a header named in SignedHeaders is absent or not text.
pub fn expected_signature(
    secret_key: &str,
    cred: &Credential,
    timestamp: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<String> {
    let mut names = cred.signed_headers.clone();
    names.sort();
    let mut canonical_headers = String::new();
    for name in &names {
        let value = headers.get(name.as_str())?.to_str().ok()?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value.trim().to_ascii_lowercase());
        canonical_headers.push('\n');
    }
    let canonical_request = format!(
        "POST\n/\n\n{}\n{}\n{}",
        canonical_headers,
        names.join(";"),
        sha256_hex(body)
    );
    let scope = format!("{}/{}/tc3_request", cred.date, cred.service);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{}\n{}",
        timestamp,
        scope,
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), cred.date.as_bytes());
    let k_service = hmac_sha256(&k_date, cred.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    Some(hex::encode(hmac_sha256(
        &k_signing,
        string_to_sign.as_bytes(),
    )))
}

/// Compares in time independent of where the first difference is.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// UTC calendar date of a unix timestamp, as the credential scope writes it.
pub fn utc_date(timestamp: i64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(timestamp).ok()?;
    Some(ts.strftime("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_headers(with_action: bool) -> (HeaderMap, Credential) {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        h.insert("host", "cvm.tencentcloudapi.com".parse().unwrap());
        h.insert("x-tc-action", "DescribeInstances".parse().unwrap());
        let mut signed = vec!["content-type".to_string(), "host".to_string()];
        if with_action {
            signed.push("x-tc-action".into());
        }
        let cred = Credential {
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******".into(),
            date: "2019-02-25".into(),
            service: "cvm".into(),
            signed_headers: signed,
            signature: String::new(),
        };
        (h, cred)
    }

    const BODY: &[u8] = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    #[test]
    fn published_vector_content_type_and_host() {
        let (h, cred) = vector_headers(false);
        let sig = expected_signature(
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            &cred,
            "1551113065",
            &h,
            BODY,
        );
        assert_eq!(
            sig.as_deref(),
            Some("2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")
        );
    }

    #[test]
    fn published_vector_with_signed_action_header() {
        let (h, cred) = vector_headers(true);
        let sig = expected_signature(
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            &cred,
            "1551113065",
            &h,
            BODY,
        );
        assert_eq!(
            sig.as_deref(),
            Some("be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3")
        );
    }

    #[test]
    fn parses_authorization_header() {
        let c = parse_authorization("TC3-HMAC-SHA256 Credential=AK/2019-02-25/clb/tc3_request, SignedHeaders=content-type;host, Signature=ABC").unwrap();
        assert_eq!(c.secret_id, "AK");
        assert_eq!(c.service, "clb");
        assert_eq!(c.signed_headers, vec!["content-type", "host"]);
        assert_eq!(c.signature, "abc");
        assert!(parse_authorization("HMAC Credential=x").is_err());
        assert!(parse_authorization(
            "TC3-HMAC-SHA256 Credential=AK/d/clb, SignedHeaders=host, Signature=a"
        )
        .is_err());
    }

    #[test]
    fn credential_date_is_utc() {
        assert_eq!(utc_date(1551113065).as_deref(), Some("2019-02-25"));
    }
}
