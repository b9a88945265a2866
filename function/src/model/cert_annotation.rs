//! `ingress.cloud.tencent.com/certificate`: certificates by annotation instead of `spec.tls`,
//! e.g. `[{"hosts":["a.example.com"],"qcloud_cert_id":["certA"]}]`.
//!
//! ASSUMPTION (tke-annotations.md §3, UNCONFIRMED: one third-party transcription, v2.8.0+):
//! the value is a JSON array of objects, each with `hosts` (list of host names) and
//! `qcloud_cert_id` (a list holding one SSL certificate id); an entry without `hosts` is the
//! default certificate, as a `spec.tls` entry without hosts is (the reference says this is
//! unknown); the annotation cannot be combined with `spec.tls`. [`parse`] is the one place
//! that reads the format, [`CERTIFICATE_FORMAT`] names the assumption.

use serde_json::Value;

use super::problem::{codes, Problem};

pub const CERTIFICATE: &str = "ingress.cloud.tencent.com/certificate";

/// Where the assumed format comes from (see the module comment).
pub const CERTIFICATE_FORMAT: &str = "tke-annotations.md §3 (UNCONFIRMED): \
     [{\"hosts\":[\"a.example.com\"],\"qcloud_cert_id\":[\"certA\"]}], no hosts = default";

/// One entry: the hosts it covers (empty: the default certificate) and its certificate id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    pub hosts: Vec<String>,
    pub cert_id: String,
}

fn bad(message: String) -> Problem {
    Problem::error(
        codes::BAD_CERTIFICATE_ANNOTATION,
        format!("{CERTIFICATE}: {message}; the Ingress is left as it is (expected {CERTIFICATE_FORMAT})"),
    )
}

/// Parses the annotation; any malformed part refuses the whole value (better no change than
/// a listener without its certificate).
pub fn parse(value: &str) -> Result<Vec<CertEntry>, Problem> {
    let entries = match serde_json::from_str::<Value>(value) {
        Ok(Value::Array(a)) => a,
        Ok(_) => return Err(bad("must be a JSON array".into())),
        Err(e) => return Err(bad(format!("invalid JSON ({e})"))),
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let Some(obj) = entry.as_object() else {
            return Err(bad(format!("entry {i} is not an object")));
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "hosts" | "qcloud_cert_id"))
        {
            return Err(bad(format!("entry {i} has an unknown key {key:?}")));
        }
        let hosts = match obj.get("hosts") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(hosts)) => {
                let names: Option<Vec<String>> = hosts
                    .iter()
                    .map(|h| h.as_str().filter(|h| !h.is_empty()).map(str::to_string))
                    .collect();
                names.ok_or_else(|| bad(format!("entry {i}: hosts must be non-empty strings")))?
            }
            Some(_) => return Err(bad(format!("entry {i}: hosts must be a list"))),
        };
        let ids: Vec<&str> = match obj.get("qcloud_cert_id") {
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let cert_id = match ids.as_slice() {
            [id] if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                return Err(bad(format!(
                    "entry {i}: qcloud_cert_id must be a list of exactly one certificate id"
                )))
            }
        };
        out.push(CertEntry { hosts, cert_id });
    }
    Ok(out)
}

/// The annotation beside `spec.tls`: TKE refuses the combination, and so do we.
pub fn combined_with_spec_tls() -> Problem {
    bad("cannot be combined with spec.tls; use one of them".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_hosts_and_without_parse() {
        let got = parse(
            r#"[{"hosts":["a.example.com","b.example.com"],"qcloud_cert_id":["certA"]},
                {"qcloud_cert_id":["certD"]}]"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                CertEntry {
                    hosts: vec!["a.example.com".into(), "b.example.com".into()],
                    cert_id: "certA".into()
                },
                CertEntry {
                    hosts: vec![],
                    cert_id: "certD".into()
                },
            ]
        );
    }

    #[test]
    fn malformed_values_are_refused_with_the_named_code() {
        for v in [
            "not json",
            r#"{"hosts":["a"]}"#,
            r#"["certA"]"#,
            r#"[{"hosts":"a.example.com","qcloud_cert_id":["certA"]}]"#,
            r#"[{"hosts":["a.example.com"]}]"#,
            r#"[{"hosts":["a.example.com"],"qcloud_cert_id":"certA"}]"#,
            r#"[{"hosts":["a.example.com"],"qcloud_cert_id":["certA","certB"]}]"#,
            r#"[{"hosts":[""],"qcloud_cert_id":["certA"]}]"#,
            r#"[{"host":["a.example.com"],"qcloud_cert_id":["certA"]}]"#,
        ] {
            let p = parse(v).unwrap_err();
            assert_eq!(p.code, codes::BAD_CERTIFICATE_ANNOTATION, "{v}");
            assert_eq!(p.severity, super::super::problem::Severity::Error, "{v}");
        }
    }

    mod in_desire {
        use serde_json::json;

        use crate::model::desired::tests::{base_view, ingress, manage, path, secret};
        use crate::model::lb::{Certificate, Domain, ListenerKey, RuleKey};
        use crate::model::problem::codes;
        use crate::model::{desire, ClusterView, Decision};

        fn view(annotation: &str, tls: Option<serde_json::Value>) -> ClusterView {
            let rule = |host: &str| json!({"host": host, "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}});
            let mut spec = json!({"rules": [rule("a.example.com"), rule("b.example.com")]});
            if let Some(tls) = tls {
                spec["tls"] = tls;
            }
            let mut v = base_view(ingress(
                json!({super::super::CERTIFICATE: annotation}),
                spec,
            ));
            v.secrets = [secret("s", json!({"qcloud_cert_id": "cert-s"}))].into();
            v
        }

        fn rule(host: &str) -> RuleKey {
            RuleKey {
                domain: Domain::Name(host.into()),
                url: "/".into(),
            }
        }

        #[test]
        fn annotation_certificates_go_per_domain_on_https_like_spec_tls() {
            let d = manage(&view(
                r#"[{"hosts":["a.example.com"],"qcloud_cert_id":["certA"]},
                    {"hosts":["b.example.com"],"qcloud_cert_id":["certB"]}]"#,
                None,
            ));
            let l = &d.listeners[&ListenerKey::HTTPS_443];
            assert!(l.sni);
            assert_eq!(
                d.listeners.len(),
                1,
                "no HTTP listener: the rules went to HTTPS"
            );
            let cert = |h: &str| l.rules[&rule(h)].certificate.clone();
            assert_eq!(
                cert("a.example.com"),
                Some(Certificate::new("certA".into(), None))
            );
            assert_eq!(
                cert("b.example.com"),
                Some(Certificate::new("certB".into(), None))
            );
            assert!(d.problems.is_empty(), "{:?}", d.problems);
        }

        #[test]
        fn annotation_entry_without_hosts_is_the_default_certificate() {
            let d = manage(&view(r#"[{"qcloud_cert_id":["certD"]}]"#, None));
            let l = &d.listeners[&ListenerKey::HTTPS_443];
            assert!(!l.sni);
            assert_eq!(l.certificate, Some(Certificate::new("certD".into(), None)));
        }

        #[test]
        fn malformed_or_combined_with_spec_tls_refuses_the_ingress_with_one_code() {
            let combined = view(
                r#"[{"hosts":["a.example.com"],"qcloud_cert_id":["certA"]}]"#,
                Some(json!([{"secretName": "s"}])),
            );
            for v in [combined, view("[{oops", None)] {
                match desire(&v, "cls-1") {
                    Decision::Invalid(p) => {
                        assert_eq!(p.len(), 1, "{p:?}");
                        assert_eq!(p[0].code, codes::BAD_CERTIFICATE_ANNOTATION);
                    }
                    other => panic!("expected Invalid, got {other:?}"),
                }
            }
        }
    }
}
