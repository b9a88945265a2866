//! One audit.k8s.io/v1 Event → the change it made, or why it made none.

use serde_json::Value;

use super::{str_at, Change, IngressKey, SkipReason};
use crate::identity::{AUDIT_ID_PREFIX, USER_AGENT_PREFIX};

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Alphabet of the apiserver's generateName suffix (`pkg/storage/names/generate.go`):
/// consonants and digits without vowels or look-alikes.
const GENERATED_SUFFIX_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";
const GENERATED_SUFFIX_LEN: usize = 5;
/// The generator truncates the base to 58 characters, so a name of 58 + 5 may have lost
/// the end of its Service name.
const GENERATED_NAME_MAX: usize = 63;

/// The change one audit event records. Only completed, successful, persisted writes by someone
/// other than us count; everything else is a [`SkipReason`].
pub(super) fn change(ev: &Value) -> Result<Change, SkipReason> {
    if !ev.is_object() {
        return Err(SkipReason::Malformed);
    }
    if str_at(ev, &["stage"]) != Some("ResponseComplete") {
        return Err(SkipReason::Incomplete);
    }
    if str_at(ev, &["userAgent"]).is_some_and(|ua| ua.starts_with(USER_AGENT_PREFIX))
        || str_at(ev, &["auditID"]).is_some_and(|id| id.starts_with(AUDIT_ID_PREFIX))
    {
        return Err(SkipReason::Own);
    }
    let verb = str_at(ev, &["verb"]).ok_or(SkipReason::Malformed)?;
    if !WRITE_VERBS.contains(&verb) {
        return Err(SkipReason::Read);
    }
    if let Some(code) = ev.get("responseStatus").and_then(|s| s.get("code")) {
        match code.as_u64() {
            Some(c) if c < 400 => {}
            Some(_) => return Err(SkipReason::Failed),
            None => return Err(SkipReason::Malformed),
        }
    }
    if str_at(ev, &["requestURI"]).is_some_and(is_dry_run) {
        return Err(SkipReason::DryRun);
    }
    let obj = match ev.get("objectRef") {
        None | Some(Value::Null) => return Err(SkipReason::Read),
        Some(obj) if obj.is_object() => obj,
        Some(_) => return Err(SkipReason::Malformed),
    };
    let group = str_at(obj, &["apiGroup"]).unwrap_or("");
    let resource = str_at(obj, &["resource"]).ok_or(SkipReason::Malformed)?;
    let subresource = str_at(obj, &["subresource"]).unwrap_or("");
    let namespace = str_at(obj, &["namespace"]).unwrap_or("").to_string();
    let name = object_name(ev, obj);

    // Namespaced resources with no name (deletecollection, generateName at Metadata level)
    // affect the whole namespace.
    let whole_namespace = || {
        if namespace.is_empty() {
            Err(SkipReason::Malformed)
        } else {
            Ok(Change::Namespace {
                namespace: namespace.clone(),
            })
        }
    };

    match (group, resource, subresource) {
        ("networking.k8s.io" | "extensions", "ingresses", "") => match name {
            Some(name) if !namespace.is_empty() => {
                let key = IngressKey::new(namespace, name);
                match deleted_uid(ev, obj, verb) {
                    Some(uid) => Ok(Change::IngressDeleted { key, uid }),
                    None => Ok(Change::Ingress(key)),
                }
            }
            _ => whole_namespace(),
        },
        ("networking.k8s.io", "ingressclasses", "") => Ok(Change::Sweep),
        ("", "services" | "endpoints", "") => match name {
            Some(name) if !namespace.is_empty() => Ok(Change::Service { namespace, name }),
            _ => whole_namespace(),
        },
        ("discovery.k8s.io", "endpointslices", "") => match service_of_slice(ev, name.as_deref()) {
            Some(name) if !namespace.is_empty() => Ok(Change::Service { namespace, name }),
            _ => whole_namespace(),
        },
        ("", "secrets", "") => match name {
            Some(name) if !namespace.is_empty() => Ok(Change::Secret { namespace, name }),
            _ => whole_namespace(),
        },
        // nodes/status reaches us only if the operator opted in (audit policy rule 6): it is
        // how readiness flips arrive.
        ("", "nodes", "" | "status") => Ok(Change::Nodes),
        ("cloud.tencent.com", "tkeserviceconfigs", "") => whole_namespace(),
        _ => Err(SkipReason::Unrelated),
    }
}

/// The UID a delete record names: `objectRef.uid`, else the deleted object in the response
/// (or the Status the apiserver answers some deletes with, `details.uid`).
fn deleted_uid(ev: &Value, obj: &Value, verb: &str) -> Option<String> {
    if verb != "delete" {
        return None;
    }
    [
        str_at(obj, &["uid"]),
        str_at(ev, &["responseObject", "metadata", "uid"]),
        str_at(ev, &["responseObject", "details", "uid"]),
    ]
    .into_iter()
    .flatten()
    .find(|u| !u.is_empty())
    .map(str::to_string)
}

/// `objectRef.name`, else the name in the response or request body (creates by generateName).
fn object_name(ev: &Value, obj: &Value) -> Option<String> {
    [
        str_at(obj, &["name"]),
        str_at(ev, &["responseObject", "metadata", "name"]),
        str_at(ev, &["requestObject", "metadata", "name"]),
    ]
    .into_iter()
    .flatten()
    .find(|n| !n.is_empty())
    .map(str::to_string)
}

/// The Service owning an EndpointSlice: its `kubernetes.io/service-name` label when a body is
/// present, else the name without its generated suffix when that is provably exact.
fn service_of_slice(ev: &Value, name: Option<&str>) -> Option<String> {
    const LABEL: &str = "kubernetes.io/service-name";
    let labelled = ["responseObject", "requestObject"]
        .into_iter()
        .find_map(|body| str_at(ev, &[body, "metadata", "labels", LABEL]));
    if let Some(service) = labelled.filter(|s| !s.is_empty()) {
        return Some(service.to_string());
    }
    let name = name?;
    if name.len() >= GENERATED_NAME_MAX || name.len() <= GENERATED_SUFFIX_LEN + 1 {
        return None;
    }
    // Byte arithmetic on a name that may hold any UTF-8: a cut inside a character means
    // the suffix is not of the (ASCII) generated alphabet.
    let cut = name.len() - GENERATED_SUFFIX_LEN;
    let (base, suffix) = (name.get(..cut)?, name.get(cut..)?);
    let generated = suffix
        .chars()
        .all(|c| GENERATED_SUFFIX_ALPHABET.contains(c));
    let service = base.strip_suffix('-')?;
    (generated && !service.is_empty()).then(|| service.to_string())
}

/// `dryRun` (normally `dryRun=All`) anywhere in the query: the apiserver persisted nothing.
fn is_dry_run(uri: &str) -> bool {
    let Some((_, query)) = uri.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "dryRun" && !value.is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(resource: &str, group: &str, ns: &str, name: &str) -> Value {
        json!({
            "auditID": "a1", "stage": "ResponseComplete", "verb": "update",
            "requestURI": "/x", "userAgent": "kubectl/v1.30",
            "objectRef": {"resource": resource, "apiGroup": group, "namespace": ns, "name": name},
            "responseStatus": {"code": 200}
        })
    }

    #[test]
    fn slice_service_comes_from_the_label_when_the_body_has_one() {
        let mut ev = write("endpointslices", "discovery.k8s.io", "shop", "");
        ev["verb"] = json!("create");
        ev["requestObject"] =
            json!({"metadata": {"labels": {"kubernetes.io/service-name": "web"}}});
        assert_eq!(
            change(&ev),
            Ok(Change::Service {
                namespace: "shop".into(),
                name: "web".into()
            })
        );
    }

    #[test]
    fn slice_service_is_the_name_minus_a_generated_suffix() {
        let ev = write(
            "endpointslices",
            "discovery.k8s.io",
            "shop",
            "web-svc-x7k2p",
        );
        assert_eq!(
            change(&ev),
            Ok(Change::Service {
                namespace: "shop".into(),
                name: "web-svc".into()
            })
        );
    }

    #[test]
    fn slice_with_a_non_ascii_name_falls_back_to_its_namespace_instead_of_panicking() {
        // 8 bytes of two-byte characters: the 5-byte suffix would start inside one.
        for name in ["web-svc-éééé", "ab-日本語"] {
            let ev = write("endpointslices", "discovery.k8s.io", "shop", name);
            assert_eq!(
                change(&ev),
                Ok(Change::Namespace {
                    namespace: "shop".into()
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn slice_with_a_possibly_truncated_name_falls_back_to_its_namespace() {
        let long = format!("{}-x7k2p", "s".repeat(57));
        assert_eq!(long.len(), 63);
        let ev = write("endpointslices", "discovery.k8s.io", "shop", &long);
        assert_eq!(
            change(&ev),
            Ok(Change::Namespace {
                namespace: "shop".into()
            })
        );
    }

    #[test]
    fn slice_whose_suffix_is_not_generated_falls_back_to_its_namespace() {
        let ev = write(
            "endpointslices",
            "discovery.k8s.io",
            "shop",
            "web-svc-AAAAA",
        );
        assert_eq!(
            change(&ev),
            Ok(Change::Namespace {
                namespace: "shop".into()
            })
        );
    }

    #[test]
    fn dry_run_is_recognised_only_as_a_query_parameter_with_a_value() {
        assert!(is_dry_run("/api/v1/namespaces/a/services/b?dryRun=All"));
        assert!(is_dry_run("/x?fieldManager=k&dryRun=All"));
        assert!(!is_dry_run("/api/v1/namespaces/dryRun/services/b"));
        assert!(!is_dry_run("/x?dryRun="));
    }

    #[test]
    fn ingress_created_by_generate_name_takes_the_name_from_the_response() {
        let mut ev = write("ingresses", "networking.k8s.io", "shop", "");
        ev["responseObject"] = json!({"metadata": {"name": "web-abcde"}});
        assert_eq!(
            change(&ev),
            Ok(Change::Ingress(IngressKey::new("shop", "web-abcde")))
        );
    }

    #[test]
    fn an_ingress_delete_names_the_uid_of_the_deleted_object() {
        let mut ev = write("ingresses", "networking.k8s.io", "shop", "web");
        ev["verb"] = json!("delete");
        let key = IngressKey::new("shop", "web");
        assert_eq!(
            change(&ev),
            Ok(Change::Ingress(key.clone())),
            "no body: no UID"
        );
        ev["responseObject"] = json!({"kind": "Status", "details": {"uid": "u-1"}});
        assert_eq!(
            change(&ev),
            Ok(Change::IngressDeleted {
                key: key.clone(),
                uid: "u-1".into()
            })
        );
        ev["responseObject"] = json!({"metadata": {"name": "web", "uid": "u-2"}});
        assert_eq!(
            change(&ev),
            Ok(Change::IngressDeleted {
                key: key.clone(),
                uid: "u-2".into()
            })
        );
        ev["verb"] = json!("update");
        assert_eq!(change(&ev), Ok(Change::Ingress(key)), "only a delete");
    }

    #[test]
    fn a_non_numeric_status_code_is_malformed_not_success() {
        let mut ev = write("ingresses", "networking.k8s.io", "shop", "web");
        ev["responseStatus"]["code"] = json!("200");
        assert_eq!(change(&ev), Err(SkipReason::Malformed));
    }
}
