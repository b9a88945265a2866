//! Is this Ingress ours? TKE's class rules (tencent-cloud.md §1.2), plus IngressClass
//! objects that name our controller.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::identity::{INGRESS_CLASS_CONTROLLER, INGRESS_CLASS_NAME};

/// The legacy class annotation; it wins over `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// What the class rules say about one Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassVerdict {
    /// Ours: manage its CLB.
    Ours,
    /// Positively another controller's: the annotation names another class, or the
    /// IngressClass exists and names another controller. Only this releases.
    Theirs,
    /// `spec.ingressClassName` names an IngressClass that does not exist (deleted for a
    /// moment by Helm or GitOps, or not created yet): no controller is named, so nothing is
    /// proven either way. Hold: no create, no change, no release (DESIGN §1).
    ClassNotFound { class: String },
}

/// Ours when: the annotation says `qcloud`; or there is no annotation and either no
/// `spec.ingressClassName`, or it is `qcloud`, or it names an IngressClass (`class`, as
/// read by the cluster side: `None` when it does not exist) whose `spec.controller` is
/// ours. An empty annotation value counts as no annotation.
pub fn verdict(ingress: &Ingress, class: Option<&IngressClass>) -> ClassVerdict {
    let annotation = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    if let Some(value) = annotation {
        return ours_if(value == INGRESS_CLASS_NAME);
    }
    let name = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return ClassVerdict::Ours;
    };
    if name == INGRESS_CLASS_NAME {
        return ClassVerdict::Ours;
    }
    match class.filter(|c| c.metadata.name.as_deref() == Some(name)) {
        None => ClassVerdict::ClassNotFound {
            class: name.to_string(),
        },
        Some(c) => ours_if(
            c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(INGRESS_CLASS_CONTROLLER),
        ),
    }
}

fn ours_if(ours: bool) -> ClassVerdict {
    if ours {
        ClassVerdict::Ours
    } else {
        ClassVerdict::Theirs
    }
}

/// Whether the Ingress is positively ours (a missing IngressClass is not).
pub fn is_ours(ingress: &Ingress, class: Option<&IngressClass>) -> bool {
    verdict(ingress, class) == ClassVerdict::Ours
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{IngressClassSpec, IngressSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ingress(annotation: Option<&str>, class_name: Option<&str>) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                annotations: annotation
                    .map(|a| [(CLASS_ANNOTATION.to_string(), a.to_string())].into()),
                ..Default::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: class_name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn class(name: &str, controller: &str) -> IngressClass {
        IngressClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(IngressClassSpec {
                controller: Some(controller.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_missing_class_proves_nothing_and_a_class_of_another_name_is_not_the_one_named() {
        let ours_class = class("edge", INGRESS_CLASS_CONTROLLER);
        let missing = ClassVerdict::ClassNotFound {
            class: "edge".into(),
        };
        assert_eq!(verdict(&ingress(None, Some("edge")), None), missing);
        assert_eq!(
            verdict(&ingress(None, Some("other")), Some(&ours_class)),
            ClassVerdict::ClassNotFound {
                class: "other".into()
            }
        );
        // The annotation decides before the field is looked at.
        assert_eq!(
            verdict(&ingress(Some("nginx"), Some("edge")), None),
            ClassVerdict::Theirs
        );
    }

    #[test]
    fn class_rules_table() {
        let ours_class = class("edge", INGRESS_CLASS_CONTROLLER);
        let nginx_class = class("nginx", "k8s.io/ingress-nginx");
        let cases: Vec<(&str, Ingress, Option<&IngressClass>, bool)> = vec![
            ("no annotation, no field", ingress(None, None), None, true),
            (
                "annotation qcloud",
                ingress(Some("qcloud"), None),
                None,
                true,
            ),
            (
                "annotation nginx",
                ingress(Some("nginx"), None),
                None,
                false,
            ),
            (
                "empty annotation = none",
                ingress(Some(""), None),
                None,
                true,
            ),
            ("field qcloud", ingress(None, Some("qcloud")), None, true),
            (
                "field names our controller's class",
                ingress(None, Some("edge")),
                Some(&ours_class),
                true,
            ),
            (
                "field names another controller's class",
                ingress(None, Some("nginx")),
                Some(&nginx_class),
                false,
            ),
            (
                "field names a missing class",
                ingress(None, Some("edge")),
                None,
                false,
            ),
            (
                "class object of another name",
                ingress(None, Some("other")),
                Some(&ours_class),
                false,
            ),
            (
                "annotation qcloud beats field nginx",
                ingress(Some("qcloud"), Some("nginx")),
                Some(&nginx_class),
                true,
            ),
            (
                "annotation nginx beats field qcloud",
                ingress(Some("nginx"), Some("qcloud")),
                None,
                false,
            ),
        ];
        for (name, ing, class, want) in cases {
            assert_eq!(is_ours(&ing, class), want, "{name}");
        }
    }
}
