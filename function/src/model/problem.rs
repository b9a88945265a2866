//! Problems found while modelling an Ingress: each carries a stable code (TKE's E-codes
//! where TKE has one, a named reason otherwise) so Events and tests can match on it.

use std::fmt;

use serde::Serialize;

/// How bad a problem is: a `Warning` skips one rule or setting, an `Error` refuses the
/// whole Ingress (or the whole plan) and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem, with the rule it concerns when it concerns only one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// `host/path` of the Ingress rule (or `defaultBackend`) the problem is about.
    pub rule: Option<String>,
}

impl Problem {
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Warning,
            message: message.into(),
            rule: None,
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            rule: None,
        }
    }

    pub fn for_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "{} [{}]: {}", self.code, r, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

/// The codes, in one place. TKE's E-codes come from `tencent-cloud.md` §1.3–1.9 (a
/// third-party transcription matching the official format); named reasons are ours.
pub mod codes {
    /// Ingress has no UID (cannot be owned).
    pub const MISSING_UID: &str = "IngressWithoutUID";
    /// Empty `spec.rules[].http` / rule without paths.
    pub const EMPTY_HTTP_RULE: &str = "E4013";
    /// Tags on the CLB do not match (tampered or another cluster).
    pub const TAGS_TAMPERED: &str = "E4017";
    /// existLbId not found (or not a CLB id at all).
    pub const EXIST_LB_NOT_FOUND: &str = "E4018";
    /// existLbId was created by TKE.
    pub const EXIST_LB_CREATED_BY_TKE: &str = "E4019";
    /// existLbId is used by another Ingress (or another cluster).
    pub const EXIST_LB_USED: &str = "E4020";
    /// existLbId has listeners we did not create.
    pub const EXIST_LB_HAS_LISTENERS: &str = "E4021";
    /// Bad `kubernetes.io/ingress.http-rules`.
    pub const BAD_HTTP_RULES: &str = "E4022";
    /// Bad `kubernetes.io/ingress.https-rules`.
    pub const BAD_HTTPS_RULES: &str = "E4023";
    /// The TkeServiceConfig an Ingress names does not exist in its namespace.
    pub const TKE_SERVICE_CONFIG_NOT_FOUND: &str = "E4043";
    /// `tke-service-config-auto` is not a bool.
    pub const BAD_TKE_SERVICE_CONFIG_AUTO: &str = "E4050";
    /// A manual TkeServiceConfig name ends in a suffix reserved for automatic configs.
    pub const RESERVED_TKE_SERVICE_CONFIG_NAME: &str = "E4051";
    /// A malformed part of a TkeServiceConfig (TKE documents no code for it); it is skipped.
    pub const INVALID_TKE_SERVICE_CONFIG: &str = "InvalidTkeServiceConfig";
    /// Bad `kubernetes.io/ingress.rule-mix`.
    pub const BAD_RULE_MIX: &str = "E4044";
    /// Bad create parameters (e.g. a malformed cross-vpc-id).
    pub const BAD_CREATE_PARAMS: &str = "E4024";
    /// Bad `kubernetes.io/ingress.extensiveParameters`.
    pub const BAD_EXTENSIVE_PARAMETERS: &str = "E4026";
    /// Invalid path for a CLB URL rule.
    pub const INVALID_PATH: &str = "E4031";
    /// `direct-access` is not a bool.
    pub const BAD_DIRECT_ACCESS: &str = "E4037";
    /// A host is required: the CLB has no default domain (IPv6-only) for host-less rules.
    pub const HOST_REQUIRED: &str = "E4034";
    /// No certificate for an HTTPS host.
    pub const CERT_NOT_FOUND_FOR_HOST: &str = "E4040";
    /// Backend Service missing.
    pub const SERVICE_NOT_FOUND: &str = "E4041";
    /// Backend Service port missing.
    pub const SERVICE_PORT_NOT_FOUND: &str = "E4042";
    /// Bad internet charge type.
    pub const BAD_CHARGE_TYPE: &str = "E4045";
    /// Bad bandwidth.
    pub const BAD_BANDWIDTH: &str = "E4046";
    /// Backend Service of the wrong type for the mode.
    pub const SERVICE_TYPE: &str = "E4047";
    /// More than one default certificate.
    pub const DUPLICATE_DEFAULT_CERT: &str = "E4048";
    /// More than one certificate for a host.
    pub const DUPLICATE_HOST_CERT: &str = "E4049";
    /// Invalid host.
    pub const INVALID_HOST: &str = "E4052";
    /// `spec.tls[].secretName` empty.
    pub const TLS_SECRET_NAME_EMPTY: &str = "E4009";
    /// TLS Secret missing.
    pub const TLS_SECRET_NOT_FOUND: &str = "E4010";
    /// TLS Secret lacks `qcloud_cert_id`.
    pub const TLS_SECRET_KEY_MISSING: &str = "E4011";
    /// `subnetId` is malformed (TKE: subnet does not exist).
    pub const BAD_SUBNET: &str = "E4091";
    /// Two Ingress paths map to the same CLB rule; the later one is skipped.
    pub const DUPLICATE_RULE: &str = "DuplicateRule";
    /// A backend that names a resource instead of a Service.
    pub const UNSUPPORTED_BACKEND: &str = "UnsupportedBackend";
    /// An annotation this reconciler does not implement; it is ignored.
    pub const UNSUPPORTED_ANNOTATION: &str = "UnsupportedAnnotation";
    /// A rule whose backend currently has no ready targets (kept, it answers 503).
    pub const NO_TARGETS: &str = "NoReadyTargets";
    /// A desired listener's port is held by a listener we do not own; it is skipped.
    pub const LISTENER_PORT_CONFLICT: &str = "ListenerPortConflict";
    /// The CLB is still being created (Status 0): only tagging is planned this run.
    pub const LB_CREATING: &str = "LoadBalancerCreating";
    /// `spec.ingressClassName` names an IngressClass that does not exist: held, nothing done.
    pub const INGRESS_CLASS_NOT_FOUND: &str = "IngressClassNotFound";
    /// Malformed `ingress.cloud.tencent.com/listen-ports`. TKE documents no code for it
    /// (tke-annotations.md §3), so this is a named reason of ours.
    pub const BAD_LISTEN_PORTS: &str = "InvalidListenPorts";
    /// Malformed `ingress.cloud.tencent.com/certificate`, or combined with `spec.tls`. TKE
    /// documents no code for either (tke-annotations.md §3): a named reason of ours.
    pub const BAD_CERTIFICATE_ANNOTATION: &str = "InvalidCertificateAnnotation";
    /// A `kubernetes.io/tls` Secret whose certificate is not (yet) in Tencent Cloud SSL: the
    /// upload failed or waits for the run under the Lease. TKE has no such feature: ours.
    pub const CERTIFICATE_NOT_UPLOADED: &str = "CertificateNotUploaded";
    /// A lifecycle annotation (mode, retain, protection, security groups, pass-to-target)
    /// with a malformed value. TKE's code for these is not documented.
    pub const INVALID_ANNOTATION: &str = "InvalidAnnotationValue";
    /// More listeners than a CLB takes (TKE: CreateListener LimitExceeded).
    pub const LISTENER_LIMIT: &str = "E4004";
    /// More rules than a listener takes (TKE: CreateRule LimitExceeded).
    pub const RULE_LIMIT: &str = "E4005";
    /// More targets than a rule takes; TKE documents no code for it.
    pub const TARGET_LIMIT: &str = "TargetLimitExceeded";
    /// Release kept the CLB (mode: skip, or deletion protection) and says why.
    pub const LB_KEPT: &str = "LoadBalancerKept";
    /// A destructive step without positive proof; nothing is done.
    pub const NO_RELEASE_PROOF: &str = "NoReleaseProof";
}
