//! RBAC as the apiserver's RBAC authorizer decides it, for service-account users: the rules
//! of every ClusterRole bound by a ClusterRoleBinding, and of every Role or ClusterRole bound
//! by a RoleBinding in the request's namespace, whose subjects name the user (as a
//! ServiceAccount, a User or one of its Groups). A request is allowed when one rule matches
//! its verb, API group, resource (`resource/subresource` for subresources, `*` and
//! `*/subresource` wildcards) and, when the rule lists them, resourceNames. Denials are the
//! apiserver's `Forbidden` Status (`responsewriters.Forbidden` + `apierrors.NewForbidden`).
//!
//! Scope: only `system:serviceaccount:NS:NAME` users are checked; the admin and other test
//! users minted by `add_token` are unrestricted, so fixtures and the tests' own kubectl never
//! need bindings. Non-resource paths (discovery, OpenAPI, health) are open to everyone, as
//! the bootstrap roles `system:discovery` and `system:public-info-viewer` make them.
//! Not modelled: ClusterRole aggregation, nonResourceURLs rules, the escalation checks on
//! writes of roles and bindings, token expiry and invalidation when the ServiceAccount goes.
//!
//! Also here, because they answer from the same rules and identities: impersonation
//! (`Impersonate-User`/`-Group`, what `kubectl --as` sends), the TokenRequest subresource
//! (`serviceaccounts/NAME/token`, what `kubectl create token` posts) and
//! SelfSubjectAccessReview (what `kubectl auth can-i` posts).

use axum::http::{HeaderMap, Method};
use serde_json::{json, Value};
use std::collections::HashMap;

use super::audit::UserInfo;
use super::resources::{self, ResourceType};
use super::status::{ApiError, Qualified};
use super::store::{self, Store};

const SA_PREFIX: &str = "system:serviceaccount:";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const AUTHENTICATED: &str = "system:authenticated";
/// Lifetime a TokenRequest gets when it asks for none (upstream default: one hour). Tokens
/// are not expired by kube-sim; the field is only reported.
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

/// The username of a service account's tokens.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SA_PREFIX}{namespace}:{name}")
}

/// `(namespace, name)` of a service-account username.
fn service_account_of(username: &str) -> Option<(&str, &str)> {
    username.strip_prefix(SA_PREFIX)?.split_once(':')
}

/// The groups the service-account authenticator gives a user (none for other users).
pub fn service_account_groups(username: &str) -> Vec<String> {
    match service_account_of(username) {
        Some((ns, _)) => vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        None => Vec::new(),
    }
}

/// What RBAC judges of a resource request (upstream `authorizer.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The verb of a resource request (upstream `RequestInfoFactory`).
pub fn verb_of(method: &Method, has_name: bool, query: &HashMap<String, String>) -> String {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), has_name) {
        ("GET", _) if watch => "watch".into(),
        ("GET", true) => "get".into(),
        ("GET", false) => "list".into(),
        ("POST", _) => "create".into(),
        ("PUT", _) => "update".into(),
        ("PATCH", _) => "patch".into(),
        ("DELETE", true) => "delete".into(),
        ("DELETE", false) => "deletecollection".into(),
        (m, _) => m.to_ascii_lowercase(),
    }
}

/// The 403 the apiserver answers, message and details as `apierrors.NewForbidden` shapes them.
pub fn forbidden(user: &UserInfo, a: &Attributes<'_>) -> ApiError {
    let resource = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_string(),
    };
    let why = match a.namespace {
        Some(ns) => format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} in the namespace {ns:?}",
            user.username, a.verb, a.group
        ),
        None => format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            user.username, a.verb, a.group
        ),
    };
    let q = Qualified {
        group: a.group,
        resource: a.resource,
    }
    .display();
    let message = match a.name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{q} {name:?} is forbidden: {why}"),
        None => format!("{q} is forbidden: {why}"),
    };
    let mut details = json!({ "kind": a.resource });
    if let Some(name) = a.name.filter(|n| !n.is_empty()) {
        details["name"] = json!(name);
    }
    if !a.group.is_empty() {
        details["group"] = json!(a.group);
    }
    ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(details),
        retry_after: None,
    }
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    store::strings_at(v, &format!("/{key}"))
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Upstream `appliesToUser`: a ServiceAccount subject without a namespace takes the
/// binding's (a ClusterRoleBinding has none, so it names nobody then).
fn subject_names(subject: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    match field(subject, "kind") {
        "User" => field(subject, "name") == user.username,
        "Group" => user.groups.iter().any(|g| g == field(subject, "name")),
        "ServiceAccount" => {
            let ns = match field(subject, "namespace") {
                "" => binding_ns,
                ns => ns,
            };
            !ns.is_empty() && service_account_user(ns, field(subject, "name")) == user.username
        }
        _ => false,
    }
}

fn rbac_type(plural: &str) -> Option<&'static ResourceType> {
    resources::lookup(RBAC_GROUP, "v1", plural)
}

/// The rules bound to `user` that apply in `namespace` (cluster-wide ones always).
fn rules_for(store: &Store, user: &UserInfo, namespace: Option<&str>) -> Vec<Value> {
    let (Some(crb), Some(cr), Some(rb), Some(role)) = (
        rbac_type("clusterrolebindings"),
        rbac_type("clusterroles"),
        rbac_type("rolebindings"),
        rbac_type("roles"),
    ) else {
        return Vec::new();
    };
    let mut roles: Vec<Value> = Vec::new();
    let bound = |b: &Value, ns: &str| {
        b.get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_names(s, user, ns)))
    };
    for b in store.list(crb, None) {
        let r = &b["roleRef"];
        if bound(&b, "") && field(r, "kind") == "ClusterRole" {
            roles.extend(store.get(cr, None, field(r, "name")).ok());
        }
    }
    if let Some(ns) = namespace {
        for b in store.list(rb, Some(ns)) {
            let r = &b["roleRef"];
            if !bound(&b, ns) {
                continue;
            }
            let found = match field(r, "kind") {
                "ClusterRole" => store.get(cr, None, field(r, "name")).ok(),
                "Role" => store.get(role, Some(ns), field(r, "name")).ok(),
                _ => None,
            };
            roles.extend(found);
        }
    }
    roles
        .iter()
        .flat_map(|r| r.get("rules").and_then(Value::as_array).cloned())
        .flatten()
        .collect()
}

/// Upstream `RuleAllows` for a resource request.
pub fn rule_allows(rule: &Value, a: &Attributes<'_>) -> bool {
    let has = |key: &str, want: &str| strs(rule, key).iter().any(|v| v == "*" || v == want);
    let combined = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_string(),
    };
    let resource_ok = strs(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || a.subresource
                .is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
    });
    let names = strs(rule, "resourceNames");
    let name_ok = names.is_empty() || a.name.is_some_and(|n| names.iter().any(|x| x == n));
    has("verbs", a.verb) && has("apiGroups", a.group) && resource_ok && name_ok
}

/// What the bootstrap role `system:basic-user` grants every authenticated user.
fn bootstrap_allows(a: &Attributes<'_>) -> bool {
    a.verb == "create"
        && a.group == "authorization.k8s.io"
        && matches!(
            a.resource,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        )
}

/// Whether RBAC lets `user` make the request (always, for users it does not govern).
pub fn allowed(store: &Store, user: &UserInfo, a: &Attributes<'_>) -> bool {
    if service_account_of(&user.username).is_none() || bootstrap_allows(a) {
        return true;
    }
    rules_for(store, user, a.namespace)
        .iter()
        .any(|r| rule_allows(r, a))
}

/// Checks the request, answering the apiserver's 403 when RBAC does not allow it.
pub fn authorize(store: &Store, user: &UserInfo, a: &Attributes<'_>) -> Result<(), ApiError> {
    if allowed(store, user, a) {
        Ok(())
    } else {
        Err(forbidden(user, a))
    }
}

/// The user a request acts as: `requester`, or whom it impersonates when it is allowed to
/// (upstream `WithImpersonation`: a service account impersonated without groups gets the
/// service-account groups; everyone impersonated is `system:authenticated`).
pub fn impersonate(
    store: &Store,
    requester: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let header_values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let users = header_values("impersonate-user");
    let groups = header_values("impersonate-group");
    let Some(username) = users.first() else {
        if groups.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::bad_request(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    let (resource, namespace, name) = match service_account_of(username) {
        Some((ns, sa)) => ("serviceaccounts", Some(ns), sa),
        None => ("users", None, username.as_str()),
    };
    let mut checks = vec![(resource, namespace, name)];
    checks.extend(groups.iter().map(|g| ("groups", None, g.as_str())));
    for (resource, namespace, name) in checks {
        authorize(
            store,
            &requester,
            &Attributes {
                verb: "impersonate",
                group: "",
                resource,
                subresource: None,
                namespace,
                name: Some(name),
            },
        )?;
    }
    let mut all_groups = if groups.is_empty() {
        service_account_groups(username)
    } else {
        groups
    };
    if !all_groups.iter().any(|g| g == AUTHENTICATED) {
        all_groups.push(AUTHENTICATED.into());
    }
    Ok(UserInfo {
        username: username.clone(),
        groups: all_groups,
    })
}

/// Answers a TokenRequest for the service account `namespace/name` (which must exist) with
/// a fresh token, registered through `register` under the account's username.
pub fn token_request(
    store: &Store,
    namespace: &str,
    name: &str,
    body: Option<&Value>,
    register: impl FnOnce(String) -> Result<String, ApiError>,
) -> Result<Value, ApiError> {
    let sa = resources::lookup("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::for_code(500, "serviceaccounts are not served"))?;
    store.get(sa, Some(namespace), name)?;
    let spec = body
        .and_then(|b| b.get("spec"))
        .cloned()
        .unwrap_or(json!({}));
    let seconds = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_TOKEN_SECONDS);
    if seconds < 600 {
        return Err(ApiError::bad_request(
            "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes",
        ));
    }
    let token = register(service_account_user(namespace, name))?;
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map_err(|e| ApiError::bad_request(format!("spec.expirationSeconds: {e}")))?;
    let mut spec = spec;
    spec["expirationSeconds"] = json!(seconds);
    if spec.get("audiences").is_none() {
        spec["audiences"] = json!(["https://kubernetes.default.svc.cluster.local"]);
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": store::now_time()},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()},
    }))
}

/// Answers a SelfSubjectAccessReview: may `user` do what `spec.resourceAttributes` says?
/// (Non-resource paths are open, see the module comment.)
pub fn self_subject_access_review(
    store: &Store,
    user: &UserInfo,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let mut review = body
        .cloned()
        .ok_or_else(|| ApiError::bad_request("request body is required"))?;
    let allowed = match review.pointer("/spec/resourceAttributes") {
        Some(ra) => {
            let opt = |k: &str| Some(field(ra, k)).filter(|s| !s.is_empty());
            allowed(
                store,
                user,
                &Attributes {
                    verb: field(ra, "verb"),
                    group: field(ra, "group"),
                    resource: field(ra, "resource"),
                    subresource: opt("subresource"),
                    namespace: opt("namespace"),
                    name: opt("name"),
                },
            )
        }
        None if review.pointer("/spec/nonResourceAttributes").is_some() => true,
        None => {
            return Err(ApiError::bad_request(
                "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
    };
    review["status"] = json!({ "allowed": allowed });
    review["metadata"] = json!({ "creationTimestamp": Value::Null });
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(verb: &'a str, resource: &'a str, sub: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            verb,
            group: "networking.k8s.io",
            resource,
            subresource: sub,
            namespace: Some("shop"),
            name: Some("web"),
        }
    }

    #[test]
    fn a_rule_matches_verbs_groups_resources_and_names_with_wildcards() {
        let rule = json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
                          "verbs": ["get", "list"]});
        assert!(rule_allows(&rule, &attrs("get", "ingresses", None)));
        assert!(!rule_allows(&rule, &attrs("delete", "ingresses", None)));
        // A subresource is its own resource: `ingresses` does not grant `ingresses/status`.
        assert!(!rule_allows(
            &rule,
            &attrs("get", "ingresses", Some("status"))
        ));
        let status = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &status,
            &attrs("update", "ingresses", Some("status"))
        ));
        assert!(!rule_allows(&status, &attrs("update", "ingresses", None)));
        let named = json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
                           "verbs": ["get"], "resourceNames": ["api"]});
        assert!(!rule_allows(&named, &attrs("get", "ingresses", None)));
        let mut list = attrs("get", "ingresses", None);
        list.name = Some("api");
        assert!(rule_allows(&named, &list));
        let core = json!({"apiGroups": [""], "resources": ["ingresses"], "verbs": ["get"]});
        assert!(!rule_allows(&core, &attrs("get", "ingresses", None)));
    }

    #[test]
    fn the_forbidden_status_reads_as_the_apiservers() {
        let user = UserInfo {
            username: service_account_user("kube-system", "clb-ingress"),
            groups: vec![],
        };
        let e = forbidden(
            &user,
            &Attributes {
                verb: "delete",
                group: "coordination.k8s.io",
                resource: "leases",
                subresource: None,
                namespace: Some("shop"),
                name: Some("clb-ingress-web"),
            },
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "leases.coordination.k8s.io \"clb-ingress-web\" is forbidden: User \"system:serviceaccount:kube-system:clb-ingress\" cannot delete resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"shop\"",
                   "reason": "Forbidden",
                   "details": {"name": "clb-ingress-web", "group": "coordination.k8s.io", "kind": "leases"},
                   "code": 403})
        );
        let list = forbidden(
            &user,
            &Attributes {
                verb: "list",
                group: "",
                resource: "secrets",
                subresource: None,
                namespace: None,
                name: None,
            },
        );
        assert_eq!(list.message, "secrets is forbidden: User \"system:serviceaccount:kube-system:clb-ingress\" cannot list resource \"secrets\" in API group \"\" at the cluster scope");
    }
}
