//! How this function names itself to Kubernetes, so that the trigger side can recognise
//! (and skip) the audit records and Events caused by our own writes.

/// Field manager for every write we make (server-side apply and patches).
pub const FIELD_MANAGER: &str = "clb-ingress";

/// User-Agent prefix of every Kubernetes and cloud request; the version follows the slash.
pub const USER_AGENT_PREFIX: &str = "clb-ingress/";

/// Our User-Agent, `clb-ingress/<crate version>`.
pub fn user_agent() -> String {
    format!("{USER_AGENT_PREFIX}{}", env!("CARGO_PKG_VERSION"))
}

/// Prefix of the `Audit-ID` header we send with every Kubernetes request; the apiserver
/// copies it into `auditID`, which is how our own writes are recognised in audit batches.
pub const AUDIT_ID_PREFIX: &str = "clb-ingress-";

/// `reportingController` of the events.k8s.io/v1 Events we emit.
pub const REPORTING_CONTROLLER: &str = "cloud.tencent.com/clb-ingress";

/// The IngressClass `spec.controller` value that marks a class as ours.
pub const INGRESS_CLASS_CONTROLLER: &str = "cloud.tencent.com/clb-ingress";

/// The class name TKE manages (annotation `kubernetes.io/ingress.class` or `spec.ingressClassName`).
pub const INGRESS_CLASS_NAME: &str = "qcloud";
