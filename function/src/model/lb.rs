//! The CLB vocabulary shared by the desired state, the observed cloud and the plan:
//! natural keys (listener = protocol+port, rule = domain+url, target = backend+port)
//! and the few attribute types the reconciler manages.

use std::fmt;

use serde::Serialize;

/// Listener protocol as the CLB API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Udp,
    TcpSsl,
    Quic,
}

impl Protocol {
    /// The API string (`HTTP`, `HTTPS`, `TCP_SSL`, ...).
    pub fn as_api(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::TcpSsl => "TCP_SSL",
            Protocol::Quic => "QUIC",
        }
    }

    /// Parses the API string; `None` for protocols this reconciler does not know.
    pub fn from_api(s: &str) -> Option<Self> {
        Some(match s {
            "HTTP" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "TCP_SSL" => Protocol::TcpSsl,
            "QUIC" => Protocol::Quic,
            _ => return None,
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_api())
    }
}

/// A listener's natural key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ListenerKey {
    pub protocol: Protocol,
    pub port: u16,
}

impl ListenerKey {
    pub const HTTP_80: ListenerKey = ListenerKey {
        protocol: Protocol::Http,
        port: 80,
    };
    pub const HTTPS_443: ListenerKey = ListenerKey {
        protocol: Protocol::Https,
        port: 443,
    };
}

impl fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol, self.port)
    }
}

/// The domain of a rule. `Default` stands for the CLB's own default domain (its VIP),
/// which TKE uses for Ingress rules without a host; it is only known once the CLB
/// exists, so the plan resolves it from the observed CLB (or apply does, after creation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Default,
    Name(String),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Default => f.write_str("<default-domain>"),
            Domain::Name(n) => f.write_str(n),
        }
    }
}

/// A rule's natural key within one listener.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RuleKey {
    pub domain: Domain,
    pub url: String,
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.domain, self.url)
    }
}

/// What a CLB target points at: a CVM instance (NodePort mode) or an ENI IP (direct mode).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Instance(String),
    EniIp(String),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Instance(i) => f.write_str(i),
            Backend::EniIp(ip) => f.write_str(ip),
        }
    }
}

/// A target's natural key within one rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TargetKey {
    pub backend: Backend,
    pub port: u16,
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.port)
    }
}

/// CLB's default target weight when none is given [SDK: Weight 0-100, default 10].
pub const DEFAULT_WEIGHT: u16 = 10;

/// `SSLMode` of a certificate binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    Unidirectional,
    Mutual,
}

impl SslMode {
    pub fn as_api(self) -> &'static str {
        match self {
            SslMode::Unidirectional => "UNIDIRECTIONAL",
            SslMode::Mutual => "MUTUAL",
        }
    }
}

/// A certificate binding (`CertificateInput` / the `Certificate` of a listener or rule).
/// Ids are Tencent SSL certificate ids, not secret material.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Certificate {
    pub ssl_mode: SslMode,
    pub cert_id: String,
    pub ca_cert_id: Option<String>,
}

impl Certificate {
    /// A server certificate, with the client CA (and so `MUTUAL`) when one is given.
    pub fn new(cert_id: String, ca_cert_id: Option<String>) -> Self {
        let ssl_mode = if ca_cert_id.is_some() {
            SslMode::Mutual
        } else {
            SslMode::Unidirectional
        };
        Certificate {
            ssl_mode,
            cert_id,
            ca_cert_id,
        }
    }
}

impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ca_cert_id {
            Some(ca) => write!(f, "{} {} ca={}", self.ssl_mode.as_api(), self.cert_id, ca),
            None => write!(f, "{} {}", self.ssl_mode.as_api(), self.cert_id),
        }
    }
}

/// `LoadBalancerType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbType {
    Open,
    Internal,
}

impl LbType {
    pub fn as_api(self) -> &'static str {
        match self {
            LbType::Open => "OPEN",
            LbType::Internal => "INTERNAL",
        }
    }
}
