//! What an Ingress refers to, and what a Node refers to: the names `cluster` must fetch to
//! build a [`ClusterView`](super::ClusterView), and the CVM instance behind a Node.
//! Pure: plain Kubernetes objects in, names and flags out.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// Bind pod IPs instead of node NodePorts (tencent-cloud.md §1.3, §1.6).
pub const ANNOTATION_DIRECT_ACCESS: &str = "ingress.cloud.tencent.com/direct-access";
/// Name of a TkeServiceConfig in the Ingress's namespace (tencent-cloud.md §1.3, §1.8).
pub const ANNOTATION_TKE_SERVICE_CONFIG: &str = "ingress.cloud.tencent.com/tke-service-config";
/// Ask TKE to maintain `<ingress-name>-auto-ingress-config` (tencent-cloud.md §1.3, §1.8).
pub const ANNOTATION_TKE_SERVICE_CONFIG_AUTO: &str =
    "ingress.cloud.tencent.com/tke-service-config-auto";
/// Suffix of the automatically maintained TkeServiceConfig (tencent-cloud.md §1.8).
pub const AUTO_TKE_SERVICE_CONFIG_SUFFIX: &str = "-auto-ingress-config";
/// Rule-mix per-protocol rule lists; their entries name backend Services too (tencent-cloud.md §1.4).
pub const ANNOTATION_HTTP_RULES: &str = "kubernetes.io/ingress.http-rules";
/// See [`ANNOTATION_HTTP_RULES`].
pub const ANNOTATION_HTTPS_RULES: &str = "kubernetes.io/ingress.https-rules";

/// Label TKE puts on its nodes with the CVM instance id (kubernetes-triggers.md §3.6, from
/// imroc/tke-guide: third-party, so also accepted as an annotation and used only as a fallback
/// after `spec.providerID`).
pub const NODE_INSTANCE_ID_KEY: &str = "cloud.tencent.com/node-instance-id";
/// Presence (any value) excludes a node from cloud load balancers (core/v1 well-known labels).
pub const LABEL_EXCLUDE_FROM_LB: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Taint the cluster autoscaler puts on nodes it is about to remove; the cloud-provider
/// service controller skips such nodes (kubernetes-triggers.md §3.6).
pub const TAINT_TO_BE_DELETED: &str = "ToBeDeletedByClusterAutoscaler";

/// Everything one Ingress makes the cluster side read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressRefs {
    /// Services named by `defaultBackend`, every rule path, and rule-mix rule annotations.
    pub services: BTreeSet<String>,
    /// Non-empty `spec.tls[].secretName`s.
    pub tls_secrets: BTreeSet<String>,
    /// `ingress.cloud.tencent.com/direct-access` is true: backends are pod IPs.
    pub direct_access: bool,
    /// EndpointSlices of [`services`](Self::services) are needed (direct access with backends).
    pub needs_endpoint_slices: bool,
    /// All Nodes are needed (NodePort mode with at least one Service backend).
    pub needs_nodes: bool,
    /// The TkeServiceConfig to read, explicit name first, else the auto-config name.
    pub tke_service_config: Option<String>,
    /// `spec.ingressClassName`, when set.
    pub ingress_class: Option<String>,
}

/// Reads a boolean annotation the way TKE's Go controller most likely does.
///
/// Assumption (unverified): TKE parses its boolean annotations with Go's `strconv.ParseBool`,
/// so `1`, `t`, `T`, `TRUE`, `true`, `True` mean true. Anything else (including invalid values,
/// which the model reports) is not true.
pub fn annotation_is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// The names and flags the view of `ingress` needs.
pub fn ingress_refs(ingress: &Ingress) -> IngressRefs {
    let annotations = ingress.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);

    let mut refs = IngressRefs::default();
    if let Some(spec) = &ingress.spec {
        if let Some(backend) = &spec.default_backend {
            add_backend(&mut refs.services, backend);
        }
        for rule in spec.rules.iter().flatten() {
            for path in rule.http.iter().flat_map(|http| &http.paths) {
                add_backend(&mut refs.services, &path.backend);
            }
        }
        refs.tls_secrets = spec
            .tls
            .iter()
            .flatten()
            .filter_map(|tls| tls.secret_name.as_deref())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        refs.ingress_class = spec
            .ingress_class_name
            .as_deref()
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
    }
    for key in [ANNOTATION_HTTP_RULES, ANNOTATION_HTTPS_RULES] {
        if let Some(value) = annotation(key) {
            add_rule_annotation_services(&mut refs.services, value);
        }
    }

    refs.direct_access = annotation(ANNOTATION_DIRECT_ACCESS).is_some_and(annotation_is_true);
    let has_services = !refs.services.is_empty();
    refs.needs_endpoint_slices = refs.direct_access && has_services;
    refs.needs_nodes = !refs.direct_access && has_services;

    let explicit = annotation(ANNOTATION_TKE_SERVICE_CONFIG)
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let auto = annotation(ANNOTATION_TKE_SERVICE_CONFIG_AUTO).is_some_and(annotation_is_true);
    refs.tke_service_config = match (explicit, auto, ingress.metadata.name.as_deref()) {
        (Some(name), _, _) => Some(name.to_owned()),
        (None, true, Some(ingress_name)) => {
            Some(format!("{ingress_name}{AUTO_TKE_SERVICE_CONFIG_SUFFIX}"))
        }
        _ => None,
    };
    refs
}

fn add_backend(services: &mut BTreeSet<String>, backend: &IngressBackend) {
    if let Some(service) = &backend.service {
        if !service.name.is_empty() {
            services.insert(service.name.clone());
        }
    }
}

/// Service names in a rule-mix annotation (`[{"backend":{"serviceName":..}}, ..]`). Malformed
/// JSON names nothing here: the model turns it into the user-facing error.
fn add_rule_annotation_services(services: &mut BTreeSet<String>, value: &str) {
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(value) else {
        return;
    };
    for entry in &entries {
        let name = entry
            .get("backend")
            .and_then(|backend| backend.get("serviceName"))
            .and_then(serde_json::Value::as_str);
        if let Some(name) = name.filter(|name| !name.is_empty()) {
            services.insert(name.to_owned());
        }
    }
}

/// The CVM instance id of a Node: the last path segment of `spec.providerID`
/// (`qcloud:///<zone>/ins-xxxx` on TKE, `tencentcloud:///<zone>/ins-xxxx` with the open-source
/// CCM), else the `cloud.tencent.com/node-instance-id` label, else the same key as annotation.
/// Only values that look like a CVM id (`ins-` followed by lowercase letters and digits) count.
pub fn node_instance_id(node: &Node) -> Option<String> {
    let from_provider = node
        .spec
        .as_ref()
        .and_then(|spec| spec.provider_id.as_deref())
        .and_then(|id| id.split_once(":///"))
        .and_then(|(_, path)| path.rsplit('/').next());
    let from_label = node
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(NODE_INSTANCE_ID_KEY))
        .map(String::as_str);
    let from_annotation = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(NODE_INSTANCE_ID_KEY))
        .map(String::as_str);
    [from_provider, from_label, from_annotation]
        .into_iter()
        .flatten()
        .find(|id| is_cvm_instance_id(id))
        .map(str::to_owned)
}

fn is_cvm_instance_id(id: &str) -> bool {
    id.strip_prefix("ins-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The Node's `Ready` condition is `True`.
pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

/// The Node carries `node.kubernetes.io/exclude-from-external-load-balancers` (any value): it
/// is no target at all. (The autoscaler's about-to-delete taint drains instead, see
/// [`super::graceful::node_is_draining`].)
pub fn node_is_excluded(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(LABEL_EXCLUDE_FROM_LB))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(value: serde_json::Value) -> Ingress {
        serde_json::from_value(value).unwrap()
    }

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    fn names(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn services_come_from_default_backend_every_path_and_rule_mix_annotations() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {
                "kubernetes.io/ingress.http-rules":
                    r#"[{"path":"/a","backend":{"serviceName":"mix-http","servicePort":"80"}},{"path":"/r","rewrite":{"port":443}}]"#,
                "kubernetes.io/ingress.https-rules": "null"
            }},
            "spec": {
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "rules": [
                    {"host": "a.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc-a", "port": {"number": 80}}}},
                        {"path": "/b", "pathType": "Exact", "backend": {"service": {"name": "svc-b", "port": {"name": "http"}}}},
                        {"path": "/bucket", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "x"}}}
                    ]}},
                    {"host": "b.example.com"},
                    {"http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc-a", "port": {"number": 8080}}}}
                    ]}}
                ]
            }
        }));
        let refs = ingress_refs(&ing);
        assert_eq!(
            refs.services,
            names(&["fallback", "mix-http", "svc-a", "svc-b"])
        );
        assert!(refs.needs_nodes);
        assert!(!refs.needs_endpoint_slices);
        assert!(!refs.direct_access);
    }

    #[test]
    fn malformed_rule_mix_annotation_names_no_service_and_does_not_fail() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.http-rules": "[{bad"}},
            "spec": {}
        }));
        let refs = ingress_refs(&ing);
        assert!(refs.services.is_empty());
        assert!(!refs.needs_nodes);
    }

    #[test]
    fn tls_secrets_skip_empty_names_and_deduplicate() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"tls": [
                {"hosts": ["a.example.com"], "secretName": "cert-a"},
                {"hosts": ["b.example.com"]},
                {"secretName": ""},
                {"hosts": ["c.example.com"], "secretName": "cert-a"},
                {"secretName": "cert-default"}
            ]}
        }));
        assert_eq!(
            ingress_refs(&ing).tls_secrets,
            names(&["cert-a", "cert-default"])
        );
    }

    #[test]
    fn direct_access_needs_endpoint_slices_not_nodes() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"ingress.cloud.tencent.com/direct-access": "true"}},
            "spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}}
        }));
        let refs = ingress_refs(&ing);
        assert!(refs.direct_access);
        assert!(refs.needs_endpoint_slices);
        assert!(!refs.needs_nodes);
    }

    #[test]
    fn direct_access_false_or_invalid_means_nodeport_mode() {
        for value in ["false", "no", "yes", ""] {
            let ing = ingress(serde_json::json!({
                "metadata": {"name": "web", "annotations": {"ingress.cloud.tencent.com/direct-access": value}},
                "spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}}
            }));
            let refs = ingress_refs(&ing);
            assert!(!refs.direct_access, "{value}");
            assert!(refs.needs_nodes, "{value}");
        }
    }

    #[test]
    fn no_service_backend_needs_neither_nodes_nor_slices() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"ingress.cloud.tencent.com/direct-access": "true"}},
            "spec": {"defaultBackend": {"resource": {"kind": "Bucket", "name": "b"}}}
        }));
        let refs = ingress_refs(&ing);
        assert!(!refs.needs_nodes);
        assert!(!refs.needs_endpoint_slices);
    }

    #[test]
    fn explicit_tke_service_config_wins_over_auto() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {
                "ingress.cloud.tencent.com/tke-service-config": "my-config",
                "ingress.cloud.tencent.com/tke-service-config-auto": "true"
            }},
            "spec": {}
        }));
        assert_eq!(
            ingress_refs(&ing).tke_service_config.as_deref(),
            Some("my-config")
        );
    }

    #[test]
    fn auto_tke_service_config_is_named_after_the_ingress() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"ingress.cloud.tencent.com/tke-service-config-auto": "true"}},
            "spec": {}
        }));
        assert_eq!(
            ingress_refs(&ing).tke_service_config.as_deref(),
            Some("web-auto-ingress-config")
        );
        let off = ingress(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"ingress.cloud.tencent.com/tke-service-config-auto": "false"}},
            "spec": {}
        }));
        assert_eq!(ingress_refs(&off).tke_service_config, None);
    }

    #[test]
    fn ingress_class_name_is_reported_when_set() {
        let ing = ingress(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"ingressClassName": "qcloud"}
        }));
        assert_eq!(ingress_refs(&ing).ingress_class.as_deref(), Some("qcloud"));
        let none = ingress(serde_json::json!({"metadata": {"name": "web"}, "spec": {}}));
        assert_eq!(ingress_refs(&none).ingress_class, None);
    }

    #[test]
    fn instance_id_is_last_segment_of_provider_id_in_any_zone_form() {
        for provider in [
            "qcloud:///100003/ins-3ven36lk",
            "tencentcloud:///ap-guangzhou-3/ins-3ven36lk",
            "qcloud:///ins-3ven36lk",
        ] {
            let n = node(
                serde_json::json!({"metadata": {"name": "n"}, "spec": {"providerID": provider}}),
            );
            assert_eq!(
                node_instance_id(&n).as_deref(),
                Some("ins-3ven36lk"),
                "{provider}"
            );
        }
    }

    #[test]
    fn instance_id_falls_back_to_label_then_annotation() {
        let labelled = node(serde_json::json!({
            "metadata": {"name": "n", "labels": {"cloud.tencent.com/node-instance-id": "ins-label1"},
                         "annotations": {"cloud.tencent.com/node-instance-id": "ins-annot1"}},
            "spec": {"providerID": "kind://docker/kind/node"}
        }));
        assert_eq!(node_instance_id(&labelled).as_deref(), Some("ins-label1"));
        let annotated = node(serde_json::json!({
            "metadata": {"name": "n", "annotations": {"cloud.tencent.com/node-instance-id": "ins-annot1"}}
        }));
        assert_eq!(node_instance_id(&annotated).as_deref(), Some("ins-annot1"));
    }

    #[test]
    fn virtual_nodes_without_cvm_have_no_instance_id() {
        let eks = node(serde_json::json!({
            "metadata": {"name": "eklet-subnet-1", "labels": {"node.kubernetes.io/instance-type": "eklet"}},
            "spec": {"providerID": "eks:///ap-guangzhou-3/eklet-subnet-1"}
        }));
        assert_eq!(node_instance_id(&eks), None);
        let bad_label = node(serde_json::json!({
            "metadata": {"name": "n", "labels": {"cloud.tencent.com/node-instance-id": "INS-../x"}}
        }));
        assert_eq!(node_instance_id(&bad_label), None);
    }

    fn ready_node(extra_labels: serde_json::Value, ready: &str) -> Node {
        node(serde_json::json!({
            "metadata": {"name": "n", "labels": extra_labels},
            "spec": {"providerID": "qcloud:///100003/ins-abc123"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready}
            ]}
        }))
    }

    #[test]
    fn a_node_without_status_is_not_ready_and_only_the_label_excludes() {
        let no_status = node(serde_json::json!({
            "metadata": {"name": "n"}, "spec": {"providerID": "qcloud:///1/ins-abc123"}
        }));
        assert!(!node_is_ready(&no_status));
        assert!(!node_is_excluded(&no_status));
        assert!(node_is_excluded(&ready_node(
            serde_json::json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
            "True"
        )));
    }
}
