//! TC3-HMAC-SHA256 request signing (Tencent Cloud API 3.0), as a pure function.
//!
//! Kept free of I/O and clocks so Tencent's published worked example can pin it down.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name that opens the string to sign and the Authorization header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// Which headers go into the signature.
///
/// The official SDKs sign `content-type;host`; the current documentation example also
/// signs `x-tc-action`. The server recomputes from the `SignedHeaders` we send, so
/// either is accepted; we default to the SDK's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedHeaders {
    /// `content-type;host`
    ContentTypeHost,
    /// `content-type;host;x-tc-action`
    WithAction,
}

impl SignedHeaders {
    fn names(self) -> &'static str {
        match self {
            SignedHeaders::ContentTypeHost => "content-type;host",
            SignedHeaders::WithAction => "content-type;host;x-tc-action",
        }
    }
}

/// Everything the signature depends on. Borrowed, so signing allocates only its output.
pub struct SignRequest<'a> {
    pub secret_id: &'a str,
    pub secret_key: &'a str,
    /// Product name, e.g. `clb`; must match the endpoint's host prefix on the real cloud.
    pub service: &'a str,
    /// Host header value exactly as sent (with `:port` when not the default).
    pub host: &'a str,
    /// Content-Type exactly as sent, byte for byte.
    pub content_type: &'a str,
    pub action: &'a str,
    /// X-TC-Timestamp, unix seconds.
    pub timestamp: i64,
    /// The POST body exactly as sent.
    pub payload: &'a [u8],
    pub signed_headers: SignedHeaders,
}

// Hand-written so that a stray `{:?}` can never print the secret key.
impl std::fmt::Debug for SignRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("service", &self.service)
            .field("host", &self.host)
            .field("action", &self.action)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// The UTC calendar date (`YYYY-MM-DD`) of a unix timestamp: the credential scope date.
/// Local time would break signing for eight hours a day in Beijing.
pub fn utc_date(timestamp: i64) -> String {
    // Days since 1970-01-01, then the proleptic Gregorian civil date (Hinnant's algorithm),
    // so the signer needs no clock or time-zone database.
    let days = timestamp.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical request of step 1 (POST, URI `/`, empty query).
pub fn canonical_request(req: &SignRequest<'_>) -> String {
    let mut headers = format!(
        "content-type:{}\nhost:{}\n",
        req.content_type.trim().to_ascii_lowercase(),
        req.host.trim().to_ascii_lowercase()
    );
    if req.signed_headers == SignedHeaders::WithAction {
        headers.push_str(&format!(
            "x-tc-action:{}\n",
            req.action.trim().to_ascii_lowercase()
        ));
    }
    format!(
        "POST\n/\n\n{headers}\n{}\n{}",
        req.signed_headers.names(),
        sha256_hex(req.payload)
    )
}

/// The string to sign of step 2.
pub fn string_to_sign(req: &SignRequest<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/tc3_request\n{}",
        req.timestamp,
        utc_date(req.timestamp),
        req.service,
        sha256_hex(canonical_request(req).as_bytes())
    )
}

/// The lowercase hex signature of step 3.
pub fn signature(req: &SignRequest<'_>) -> String {
    let date = utc_date(req.timestamp);
    let k_date = hmac_sha256(format!("TC3{}", req.secret_key).as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, req.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    hex::encode(hmac_sha256(&k_signing, string_to_sign(req).as_bytes()))
}

/// The `Authorization` header value of step 4. It holds no secret, but it is a bearer of
/// authority for five minutes, so callers never log it either.
pub fn authorization(req: &SignRequest<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
        req.secret_id,
        utc_date(req.timestamp),
        req.service,
        req.signed_headers.names(),
        signature(req)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent's worked example (tencent-cloud.md §4.2): CVM DescribeInstances.
    const PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const MASKED_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
    const MASKED_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";

    fn example(
        key: &'static str,
        id: &'static str,
        variant: SignedHeaders,
    ) -> SignRequest<'static> {
        SignRequest {
            secret_id: id,
            secret_key: key,
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            action: "DescribeInstances",
            timestamp: 1_551_113_065,
            payload: PAYLOAD.as_bytes(),
            signed_headers: variant,
        }
    }

    #[test]
    fn payload_hash_matches_published_example() {
        assert_eq!(
            sha256_hex(PAYLOAD.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
    }

    #[test]
    fn variant_a_content_type_host_matches_published_vectors() {
        let req = example(MASKED_KEY, MASKED_ID, SignedHeaders::ContentTypeHost);
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signature(&req),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        let req = example(
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            SignedHeaders::ContentTypeHost,
        );
        assert_eq!(
            signature(&req),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn variant_b_with_action_matches_published_vectors_and_authorization() {
        let req = example(MASKED_KEY, MASKED_ID, SignedHeaders::WithAction);
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        let sig = "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3";
        assert_eq!(signature(&req), sig);
        assert_eq!(
            authorization(&req),
            format!(
                "TC3-HMAC-SHA256 Credential={MASKED_ID}/2019-02-25/cvm/tc3_request, \
                 SignedHeaders=content-type;host;x-tc-action, Signature={sig}"
            )
        );
        let req = example(
            "********************************",
            MASKED_ID,
            SignedHeaders::WithAction,
        );
        assert_eq!(
            signature(&req),
            "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
    }

    #[test]
    fn clb_request_to_an_emulator_host_with_port_matches_the_python_sdk() {
        // Expected value computed with tencentcloud-sdk-python-common 3.1.195
        // (`Sign.sign_tc3` over the SDK's content-type;host canonical request).
        let req = SignRequest {
            secret_id: "AKIDsim",
            secret_key: "sim-secret-key",
            service: "clb",
            host: "127.0.0.1:9100",
            content_type: "application/json",
            action: "DescribeLoadBalancers",
            timestamp: 1_764_100_000,
            payload: br#"{"LoadBalancerIds":["lb-12345678"],"Limit":20}"#,
            signed_headers: SignedHeaders::ContentTypeHost,
        };
        assert_eq!(
            signature(&req),
            "fe3c992a8b74f1259548c08f724933244b070aefd10f3d00c9fc7679b01ee847"
        );
        assert!(authorization(&req).contains("Credential=AKIDsim/2025-11-25/clb/tc3_request, "));
    }

    #[test]
    fn credential_date_is_the_utc_date_not_beijing_date() {
        // 1551113065 is 2019-02-25 16:44:25 UTC, already 2019-02-26 in Beijing (UTC+8).
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        let sts = string_to_sign(&example(
            MASKED_KEY,
            MASKED_ID,
            SignedHeaders::ContentTypeHost,
        ));
        assert!(sts.contains("\n2019-02-25/cvm/tc3_request\n"), "{sts}");
    }

    #[test]
    fn utc_date_handles_epoch_leap_days_and_day_boundaries() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399), "1970-01-01");
        assert_eq!(utc_date(86_400), "1970-01-02");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_709_164_800), "2024-02-29");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31");
    }

    #[test]
    fn debug_output_redacts_the_secret_key() {
        let req = example(
            "super-secret-key-value",
            MASKED_ID,
            SignedHeaders::ContentTypeHost,
        );
        let shown = format!("{req:?}");
        assert!(!shown.contains("super-secret-key-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
