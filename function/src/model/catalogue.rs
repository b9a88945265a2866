//! Every annotation the reference names for a TKE CLB Ingress (tencent-cloud.md §1.3,
//! tke-annotations.md §2–§4), in one list, so that none is silently ignored: the tests below
//! walk it and prove that each is either handled (a malformed value changes the decision,
//! with a problem naming it) or reported as `UnsupportedAnnotation`, and that the README's
//! annotation section names each one.

/// Annotations a user sets on an Ingress.
pub const USER_ANNOTATIONS: &[&str] = &[
    "kubernetes.io/ingress.class",
    "kubernetes.io/ingress.existLbId",
    "kubernetes.io/ingress.subnetId",
    "kubernetes.io/ingress.internetChargeType",
    "kubernetes.io/ingress.internetMaxBandwidthOut",
    "kubernetes.io/ingress.extensiveParameters",
    "kubernetes.io/ingress.rule-mix",
    "kubernetes.io/ingress.http-rules",
    "kubernetes.io/ingress.https-rules",
    "kubernetes.io/ingress.rule-mix-both",
    "ingress.cloud.tencent.com/direct-access",
    "ingress.cloud.tencent.com/tke-service-config",
    "ingress.cloud.tencent.com/tke-service-config-auto",
    "ingress.cloud.tencent.com/rewrite-support",
    "ingress.cloud.tencent.com/auto-rewrite",
    "ingress.cloud.tencent.com/auto-rewrite-code",
    "ingress.cloud.tencent.com/listen-ports",
    "ingress.cloud.tencent.com/cross-region-id",
    "ingress.cloud.tencent.com/cross-vpc-id",
    "ingress.cloud.tencent.com/enable-grace-shutdown",
    "ingress.cloud.tencent.com/enable-grace-shutdown-tkex",
    "ingress.cloud.tencent.com/enable-grace-deletion",
    "ingress.cloud.tencent.com/security-groups",
    "ingress.cloud.tencent.com/pass-to-target",
    "ingress.cloud.tencent.com/modification-protection",
    "ingress.cloud.tencent.com/deletion-protection",
    "ingress.cloud.tencent.com/loadbalance-retain",
    "ingress.cloud.tencent.com/lb-rs-weight",
    "ingress.cloud.tencent.com/mix-target-prefer",
    "ingress.cloud.tencent.com/certificate",
    "ingress.cloud.tencent.com/enable-group",
    "ingress.cloud.tencent.com/mode",
];

/// Annotations TKE's controller writes (read-only to users, tencent-cloud.md §1.3): not
/// inputs, so setting one is neither handled nor reported.
pub const CONTROLLER_ANNOTATIONS: &[&str] = &[
    "kubernetes.io/ingress.qcloud-loadbalance-id",
    "ingress.cloud.tencent.com/loadbalance-nat-ipv6",
    "ingress.cloud.tencent.com/loadbalance-ipv6",
    "ingress.cloud.tencent.com/status.conditions",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::model::desired::tests::{base_view, ingress, path};
    use crate::model::problem::codes;
    use crate::model::{desire, Decision};

    const MALFORMED: &str = "%not a valid value%";

    fn decision(annotations: serde_json::Value) -> Decision {
        let spec = json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "Prefix", "web", json!({"number": 80}))]}}]});
        desire(&base_view(ingress(annotations, spec)), "cls-1")
    }

    fn problems(d: &Decision) -> Vec<crate::model::Problem> {
        match d {
            Decision::Invalid(p) => p.clone(),
            Decision::Manage(m) => m.problems.clone(),
            _ => Vec::new(),
        }
    }

    fn unsupported() -> BTreeSet<&'static str> {
        crate::model::annotations::UNSUPPORTED
            .iter()
            .chain(crate::model::lifecycle::UNSUPPORTED.iter())
            .copied()
            .collect()
    }

    #[test]
    fn every_reference_annotation_is_handled_or_reported_never_ignored() {
        let base = decision(json!({"kubernetes.io/ingress.class": "qcloud"}));
        let Decision::Manage(base_lb) = &base else {
            panic!("the base Ingress is managed: {base:?}")
        };
        assert!(base_lb.problems.is_empty(), "{:?}", base_lb.problems);
        let unsupported = unsupported();
        for key in USER_ANNOTATIONS {
            let d = decision(json!({"kubernetes.io/ingress.class": "qcloud", *key: MALFORMED}));
            let got = problems(&d);
            if unsupported.contains(key) {
                assert!(
                    got.iter()
                        .any(|p| p.code == codes::UNSUPPORTED_ANNOTATION
                            && p.message.contains(key)),
                    "{key}: {got:?}"
                );
                continue;
            }
            assert_ne!(d, base, "{key}: a malformed value went unnoticed");
            assert!(
                got.iter().all(|p| p.code != codes::UNSUPPORTED_ANNOTATION),
                "{key} is handled, not unsupported: {got:?}"
            );
            if let Decision::Manage(m) = &d {
                // A warning, and the CLB's shape is what it was without the annotation.
                assert!(!got.is_empty(), "{key}: no problem reported");
                assert_eq!(m.listeners, base_lb.listeners, "{key}");
                assert_eq!(m.load_balancer, base_lb.load_balancer, "{key}");
            }
        }
    }

    #[test]
    fn the_unsupported_lists_name_only_reference_annotations() {
        let listed: BTreeSet<&str> = USER_ANNOTATIONS.iter().copied().collect();
        for key in unsupported() {
            assert!(listed.contains(key), "{key} is not in USER_ANNOTATIONS");
        }
        assert_eq!(listed.len(), USER_ANNOTATIONS.len(), "no duplicates");
    }

    #[test]
    fn the_readme_names_every_reference_annotation_in_its_annotation_section() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let start = readme
            .find("\n## Annotations")
            .expect("an Annotations section");
        let rest = &readme[start + 1..];
        let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3)];
        for key in USER_ANNOTATIONS.iter().chain(CONTROLLER_ANNOTATIONS) {
            assert!(
                section.contains(&format!("`{key}`")),
                "README's annotation section does not name {key}"
            );
        }
    }
}
