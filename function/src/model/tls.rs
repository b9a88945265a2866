//! `spec.tls` → certificates (tencent-cloud.md §1.5): each Secret names a Tencent SSL
//! certificate by id (`qcloud_cert_id`, plus `qcloud_ca_cert_id` for mutual TLS). An entry
//! without hosts is the default certificate; any per-host certificate turns SNI on.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;

use super::cert_annotation::{CertEntry, CERTIFICATE};
use super::lb::{Certificate, Domain};
use super::problem::{codes, Problem};
use super::view::ClusterView;

/// Secret key holding the server certificate id.
pub const CERT_ID_KEY: &str = "qcloud_cert_id";
/// Secret key holding the client CA certificate id (mutual TLS).
pub const CA_CERT_ID_KEY: &str = "qcloud_ca_cert_id";

/// The certificates of one Ingress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsCerts {
    /// `spec.tls` has entries: rules go to HTTPS:443.
    pub enabled: bool,
    pub default: Option<Certificate>,
    pub hosts: BTreeMap<String, Certificate>,
    /// Hosts whose entry names a Secret that is missing (or lacks the certificate id), and
    /// whether the default entry's is: their rules hold what the CLB has (issue 10 §1: a
    /// Secret deleted and re-created must not take the listener down).
    pub missing: BTreeSet<String>,
    pub default_missing: bool,
}

impl TlsCerts {
    /// SNI is on as soon as any host has its own certificate.
    pub fn sni(&self) -> bool {
        !self.hosts.is_empty() || !self.missing.is_empty()
    }

    /// Whether the certificate of `domain` would come (by the order of [`Self::for_domain`])
    /// from an entry whose Secret is missing: its rules then hold what the CLB has.
    pub fn held(&self, domain: &Domain) -> bool {
        if let Domain::Name(host) = domain {
            let wildcard = host
                .split_once('.')
                .map(|(_, parent)| format!("*.{parent}"))
                .filter(|w| w != host);
            for name in std::iter::once(host.clone()).chain(wildcard) {
                if self.hosts.contains_key(&name) {
                    return false;
                }
                if self.missing.contains(&name) {
                    return true;
                }
            }
        }
        self.default.is_none() && self.default_missing
    }

    /// The certificate for a rule domain: the exact host, else a `*.parent` entry covering
    /// one label, else the default. The VIP (default domain) only gets the default.
    pub fn for_domain(&self, domain: &Domain) -> Option<&Certificate> {
        let Domain::Name(host) = domain else {
            return self.default.as_ref();
        };
        if let Some(c) = self.hosts.get(host) {
            return Some(c);
        }
        let wildcard = host
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"))
            .filter(|w| w != host);
        wildcard
            .and_then(|w| self.hosts.get(&w))
            .or(self.default.as_ref())
    }
}

/// A Secret key's value as text (data first, then stringData), trimmed; never logged.
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| std::str::from_utf8(&b.0).ok())
        .map(str::to_string);
    from_data
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reads the certificates (from `spec.tls`, or from the `certificate` annotation when it is
/// set: the two cannot be combined, which `desire` refuses before this); each broken
/// `spec.tls` entry is a warning and its hosts go without (their rules then fail with E4040
/// unless a default certificate covers them).
pub fn certificates(
    view: &ClusterView,
    annotated: Option<&[CertEntry]>,
    problems: &mut Vec<Problem>,
) -> TlsCerts {
    if let Some(entries) = annotated {
        let mut out = TlsCerts {
            enabled: !entries.is_empty(),
            ..Default::default()
        };
        for (i, e) in entries.iter().enumerate() {
            let what = format!("{CERTIFICATE}[{i}]");
            let hosts: Vec<&str> = e.hosts.iter().map(String::as_str).collect();
            out.add(
                &what,
                &hosts,
                Certificate::new(e.cert_id.clone(), None),
                problems,
            );
        }
        return out;
    }
    let entries = view
        .ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_deref())
        .unwrap_or(&[]);
    let mut out = TlsCerts {
        enabled: !entries.is_empty(),
        ..Default::default()
    };
    for (i, tls) in entries.iter().enumerate() {
        let hosts: Vec<&str> = tls
            .hosts
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|h| !h.is_empty())
            .collect();
        let what = if hosts.is_empty() {
            format!("spec.tls[{i}] (default certificate)")
        } else {
            format!("spec.tls[{i}] ({})", hosts.join(","))
        };
        let Some(name) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else {
            problems.push(Problem::warning(
                codes::TLS_SECRET_NAME_EMPTY,
                format!("{what}: secretName is empty"),
            ));
            continue;
        };
        let held = "the CLB keeps the certificate and rules it has for them until it is back";
        let Some(secret) = view.secrets.get(name) else {
            problems.push(Problem::warning(
                codes::TLS_SECRET_NOT_FOUND,
                format!("{what}: Secret {name} not found; {held}"),
            ));
            out.mark_missing(&hosts);
            continue;
        };
        let uploaded = || view.uploaded_certs.ids.get(name).cloned();
        let Some(cert_id) = secret_value(secret, CERT_ID_KEY).or_else(uploaded) else {
            if super::uploaded_certs::wants_upload(secret) {
                // A failed upload (a broken certificate rotated in) holds what the CLB
                // serves, as a missing Secret does. Not uploaded yet (the look before the
                // Lease) holds nothing: the plan must stay non-empty so the run takes the
                // Lease and uploads.
                let message = match view.uploaded_certs.failed.get(name) {
                    Some(code) => {
                        out.mark_missing(&hosts);
                        format!(
                            "{what}: uploading the certificate of Secret {name} failed ({code}); {held}"
                        )
                    }
                    None => format!("{what}: the certificate of Secret {name} is not uploaded yet"),
                };
                problems.push(Problem::warning(codes::CERTIFICATE_NOT_UPLOADED, message));
                continue;
            }
            problems.push(Problem::warning(
                codes::TLS_SECRET_KEY_MISSING,
                format!("{what}: Secret {name} has no key {CERT_ID_KEY}; {held}"),
            ));
            out.mark_missing(&hosts);
            continue;
        };
        let cert = Certificate::new(cert_id, secret_value(secret, CA_CERT_ID_KEY));
        out.add(&what, &hosts, cert, problems);
    }
    out
}

impl TlsCerts {
    /// An entry whose Secret cannot give its certificate: its hosts (or the default).
    fn mark_missing(&mut self, hosts: &[&str]) {
        if hosts.is_empty() {
            self.default_missing = true;
        }
        self.missing.extend(hosts.iter().map(|h| h.to_string()));
    }

    /// One entry's certificate: the default when it names no host, else each host's; a
    /// second default or a second certificate for a host is a warning and ignored.
    fn add(&mut self, what: &str, hosts: &[&str], cert: Certificate, problems: &mut Vec<Problem>) {
        if hosts.is_empty() {
            if self.default.is_some() {
                problems.push(Problem::warning(
                    codes::DUPLICATE_DEFAULT_CERT,
                    format!("{what}: a default certificate is already set; ignored"),
                ));
            } else {
                self.default = Some(cert);
            }
            return;
        }
        for host in hosts {
            if self.hosts.contains_key(*host) {
                problems.push(Problem::warning(
                    codes::DUPLICATE_HOST_CERT,
                    format!("{what}: host {host} already has a certificate; ignored"),
                ));
            } else {
                self.hosts.insert(host.to_string(), cert.clone());
            }
        }
    }
}
