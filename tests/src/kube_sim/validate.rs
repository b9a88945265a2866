//! Validation of what clients write (the subset of upstream `validation.go` for the served
//! types that catches real client bugs), and the defaults the apiserver fills in.

use serde_json::{json, Value};

use super::resources::{NameRule, ResourceType};
use super::status::FieldError;

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Name errors for the type's rule (`metadata.name` or the generateName prefix).
pub fn check_name(t: &ResourceType, name: &str, field: &str) -> Option<FieldError> {
    let (ok, what) = match t.name_rule {
        NameRule::Subdomain => (
            is_dns1123_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        NameRule::Label => (
            is_dns1123_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::Dns1035 => (
            is_dns1035_label(name),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::PathSegment => (
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']),
            "may not contain '/' or '%' and may not be '.' or '..'",
        ),
    };
    (!ok).then(|| FieldError::invalid(field, name, what))
}

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn check_labels(obj: &Value, errs: &mut Vec<FieldError>) {
    for (field, ptr) in [
        ("metadata.labels", "/metadata/labels"),
        ("metadata.annotations", "/metadata/annotations"),
    ] {
        match obj.pointer(ptr) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    if !v.is_string() {
                        errs.push(FieldError::invalid(
                            format!("{field}[{k}]"),
                            &v.to_string(),
                            "must be a string",
                        ));
                    }
                }
            }
            Some(other) => errs.push(FieldError::invalid(
                field,
                &other.to_string(),
                "must be a map of strings",
            )),
        }
    }
    if let Some(Value::Object(m)) = obj.pointer("/metadata/labels") {
        for (k, v) in m {
            if !super::selector::valid_key(k) {
                errs.push(FieldError::invalid("metadata.labels", k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
            if let Some(v) = v.as_str() {
                if !super::selector::valid_value(v) {
                    errs.push(FieldError::invalid(
                        "metadata.labels",
                        v,
                        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    ));
                }
            }
        }
    }
}

fn check_backend(b: &Value, field: &str, errs: &mut Vec<FieldError>) {
    let svc = b.get("service");
    let res = b.get("resource");
    match (svc, res) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            field,
            "",
            "cannot set both resource and service backends",
        )),
        (None, None) => errs.push(FieldError::invalid(
            field,
            "",
            "resource or service backend is required",
        )),
        (Some(svc), None) => {
            match svc.get("name").and_then(Value::as_str) {
                Some(n) if is_dns1035_label(n) => {}
                Some(n) => errs.push(FieldError::invalid(
                    format!("{field}.service.name"),
                    n,
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
                )),
                None => errs.push(FieldError::required(format!("{field}.service.name"))),
            }
            let port = svc.get("port");
            let number = port.and_then(|p| p.get("number")).and_then(Value::as_i64);
            let name = port.and_then(|p| p.get("name")).and_then(Value::as_str);
            match (number, name) {
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    format!("{field}.service.port"),
                    "",
                    "cannot set both port name & port number",
                )),
                (None, None) => errs.push(FieldError::invalid(
                    format!("{field}.service.port"),
                    "",
                    "port name or number is required",
                )),
                (Some(n), None) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
                    format!("{field}.service.port.number"),
                    &n.to_string(),
                    "must be between 1 and 65535, inclusive",
                )),
                _ => {}
            }
        }
        (None, Some(r)) => {
            if r.get("kind").and_then(Value::as_str).is_none() {
                errs.push(FieldError::required(format!("{field}.resource.kind")));
            }
            if r.get("name").and_then(Value::as_str).is_none() {
                errs.push(FieldError::required(format!("{field}.resource.name")));
            }
        }
    }
}

fn check_ingress(obj: &Value, errs: &mut Vec<FieldError>) {
    let rules = arr(obj, "/spec/rules");
    if obj.pointer("/spec/defaultBackend").is_none() && rules.is_empty() {
        errs.push(FieldError::invalid(
            "spec.rules",
            "",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = obj.pointer("/spec/defaultBackend") {
        check_backend(b, "spec.defaultBackend", errs);
    }
    for (i, rule) in rules.iter().enumerate() {
        if let Some(host) = rule.get("host").and_then(Value::as_str) {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if !is_dns1123_subdomain(bare) || host.parse::<std::net::IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    format!("spec.rules[{i}].host"),
                    host,
                    "a lowercase RFC 1123 subdomain (optionally prefixed with '*.') is required, not an IP",
                ));
            }
        }
        let paths = arr(rule, "/http/paths");
        if rule.get("http").is_some() && paths.is_empty() {
            errs.push(FieldError::required(format!("spec.rules[{i}].http.paths")));
        }
        for (j, p) in paths.iter().enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            match p.get("pathType").and_then(Value::as_str) {
                None => errs.push(FieldError::required(format!("{field}.pathType"))),
                Some(t @ ("Exact" | "Prefix")) => {
                    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            format!("{field}.path"),
                            path,
                            format!("must be an absolute path (pathType {t})"),
                        ));
                    }
                }
                Some("ImplementationSpecific") => {}
                Some(other) => errs.push(FieldError::not_supported(
                    format!("{field}.pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            match p.get("backend") {
                Some(b) => check_backend(b, &format!("{field}.backend"), errs),
                None => errs.push(FieldError::required(format!("{field}.backend"))),
            }
        }
    }
}

fn check_service(obj: &Value, errs: &mut Vec<FieldError>) {
    let ty = s(obj, "/spec/type").unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        errs.push(FieldError::not_supported(
            "spec.type",
            ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = arr(obj, "/spec/ports");
    let headless = s(obj, "/spec/clusterIP") == Some("None");
    if ports.is_empty() && ty != "ExternalName" && !headless {
        errs.push(FieldError::required("spec.ports"));
    }
    for (i, p) in ports.iter().enumerate() {
        match p.get("port").and_then(Value::as_i64) {
            Some(n) if (1..=65535).contains(&n) => {}
            Some(n) => errs.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                &n.to_string(),
                "must be between 1 and 65535, inclusive",
            )),
            None => errs.push(FieldError::required(format!("spec.ports[{i}].port"))),
        }
        if ports.len() > 1
            && p.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            errs.push(FieldError::required(format!("spec.ports[{i}].name")));
        }
        let node_port = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0);
        if let Some(n) = node_port {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !(30000..=32767).contains(&n) {
                errs.push(FieldError::invalid(
                    format!("spec.ports[{i}].nodePort"),
                    &n.to_string(),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
        }
        if let Some(proto) = p.get("protocol").and_then(Value::as_str) {
            if !["TCP", "UDP", "SCTP"].contains(&proto) {
                errs.push(FieldError::not_supported(
                    format!("spec.ports[{i}].protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
        }
    }
}

fn check_events_v1(obj: &Value, errs: &mut Vec<FieldError>) {
    for (field, ptr) in [
        ("eventTime", "/eventTime"),
        ("reportingController", "/reportingController"),
        ("reportingInstance", "/reportingInstance"),
        ("action", "/action"),
        ("reason", "/reason"),
    ] {
        if s(obj, ptr).is_none_or(str::is_empty) {
            errs.push(FieldError::required(field));
        }
    }
    match s(obj, "/type") {
        Some("Normal" | "Warning") => {}
        Some(other) => errs.push(FieldError::not_supported(
            "type",
            other,
            &["Normal", "Warning"],
        )),
        None => errs.push(FieldError::required("type")),
    }
    if s(obj, "/note").is_some_and(|n| n.len() > 1024) {
        errs.push(FieldError::too_long("note", 1024));
    }
    if let Some(t) = s(obj, "/eventTime") {
        if !is_micro_time(t) {
            errs.push(FieldError::invalid(
                "eventTime",
                t,
                "must be an RFC 3339 time with microseconds",
            ));
        }
    }
}

/// MicroTime as the apiserver parses it: RFC 3339 (fractional seconds optional).
pub fn is_micro_time(t: &str) -> bool {
    t.parse::<jiff::Timestamp>().is_ok()
}

fn check_lease(obj: &Value, errs: &mut Vec<FieldError>) {
    if let Some(d) = obj.pointer("/spec/leaseDurationSeconds") {
        if d.as_i64().is_none_or(|d| d <= 0) {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                &d.to_string(),
                "must be greater than 0",
            ));
        }
    }
    if let Some(d) = obj.pointer("/spec/leaseTransitions") {
        if d.as_i64().is_none_or(|d| d < 0) {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                &d.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    for f in ["acquireTime", "renewTime"] {
        match obj.pointer(&format!("/spec/{f}")) {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if is_micro_time(t) => {}
            Some(other) => errs.push(FieldError::invalid(
                format!("spec.{f}"),
                &other.to_string(),
                "must be an RFC 3339 MicroTime",
            )),
        }
    }
}

fn check_ingress_class(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    match s(obj, "/spec/controller") {
        Some(c) if c.len() > 250 => errs.push(FieldError::too_long("spec.controller", 250)),
        Some(c) if !c.contains('/') => errs.push(FieldError::invalid(
            "spec.controller",
            c,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
        Some(_) => {}
        None => errs.push(FieldError::required("spec.controller")),
    }
    if let Some(old) = old {
        if s(old, "/spec/controller") != s(obj, "/spec/controller") {
            errs.push(FieldError::invalid(
                "spec.controller",
                s(obj, "/spec/controller").unwrap_or(""),
                "field is immutable",
            ));
        }
    }
}

fn check_secret(obj: &Value, errs: &mut Vec<FieldError>) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(m)) = obj.get(field) {
            for k in m.keys() {
                let ok = !k.is_empty()
                    && k.len() <= 253
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    errs.push(FieldError::invalid(
                        format!("{field}[{k}]"),
                        k,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    ));
                }
            }
        }
    }
    if obj.pointer("/type").and_then(Value::as_str) == Some("kubernetes.io/tls") {
        for key in ["tls.crt", "tls.key"] {
            if obj
                .pointer(&format!("/data/{}", key.replace('/', "~1")))
                .is_none()
            {
                errs.push(FieldError::required(format!("data[{key}]")));
            }
        }
    }
}

/// A Pod needs containers, each with a name and an image; readiness gates name a condition
/// type (upstream `validatePodSpec`, `validateReadinessGates`).
fn check_pod(obj: &Value, errs: &mut Vec<FieldError>) {
    let containers = arr(obj, "/spec/containers");
    if containers.is_empty() {
        errs.push(FieldError::required("spec.containers"));
    }
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if s(c, &format!("/{field}")).is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!(
                    "spec.containers[{i}].{field}"
                )));
            }
        }
    }
    for (i, gate) in arr(obj, "/spec/readinessGates").iter().enumerate() {
        if s(gate, "/conditionType").is_none_or(str::is_empty) {
            errs.push(FieldError::required(format!(
                "spec.readinessGates[{i}].conditionType"
            )));
        }
    }
}

/// Every type-specific check for a create (`old` = None) or an update.
pub fn check(t: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check_labels(obj, &mut errs);
    let spec = |e: &mut Vec<FieldError>| {
        if !obj.get("spec").is_none_or(Value::is_object) {
            e.push(FieldError::invalid("spec", "", "must be an object"));
        }
    };
    spec(&mut errs);
    match (t.group, t.plural) {
        ("networking.k8s.io", "ingresses") => check_ingress(obj, &mut errs),
        ("networking.k8s.io", "ingressclasses") => check_ingress_class(obj, old, &mut errs),
        ("", "services") => check_service(obj, &mut errs),
        ("", "secrets") => check_secret(obj, &mut errs),
        ("", "pods") => check_pod(obj, &mut errs),
        ("events.k8s.io", "events") => check_events_v1(obj, &mut errs),
        ("coordination.k8s.io", "leases") => check_lease(obj, &mut errs),
        ("discovery.k8s.io", "endpointslices") => match s(obj, "/addressType") {
            Some("IPv4" | "IPv6" | "FQDN") => {}
            Some(other) => errs.push(FieldError::not_supported(
                "addressType",
                other,
                &["FQDN", "IPv4", "IPv6"],
            )),
            None => errs.push(FieldError::required("addressType")),
        },
        _ => {}
    }
    errs
}

/// Defaults the apiserver fills in on create (and on update where the field is missing).
/// Service cluster IPs and node ports are allocated from `alloc`.
pub fn apply_defaults(t: &ResourceType, obj: &mut Value, alloc: &mut Allocator) {
    match (t.group, t.plural) {
        ("", "services") => {
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
            if spec.get("sessionAffinity").is_none() {
                spec["sessionAffinity"] = json!("None");
            }
            if ty != "ExternalName" && spec.get("clusterIP").is_none_or(|c| c.as_str() == Some(""))
            {
                let ip = alloc.cluster_ip();
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("targetPort").is_none() {
                        p["targetPort"] = p["port"].clone();
                    }
                    let wants_node_port = ty == "NodePort" || ty == "LoadBalancer";
                    if wants_node_port && p.get("nodePort").is_none_or(|n| n.as_i64() == Some(0)) {
                        p["nodePort"] = json!(alloc.node_port());
                    }
                }
            }
        }
        ("", "secrets") => {
            if obj.get("type").is_none_or(|t| t.as_str() == Some("")) {
                obj["type"] = json!("Opaque");
            }
            if let Some(Value::Object(sd)) = obj.get("stringData").cloned() {
                use base64::Engine;
                for (k, v) in sd {
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    if !obj.get("data").is_some_and(Value::is_object) {
                        obj["data"] = json!({});
                    }
                    obj["data"][k] = json!(enc);
                }
                if let Some(m) = obj.as_object_mut() {
                    m.remove("stringData");
                }
            }
        }
        ("", "namespaces") => {
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({ "phase": "Active" });
            }
            // Upstream PrepareForCreate insists on the `kubernetes` finalizer.
            let fins = obj.pointer("/spec/finalizers").and_then(Value::as_array);
            if fins.is_none_or(|f| !f.iter().any(|x| x == "kubernetes")) {
                let mut fins = fins.cloned().unwrap_or_default();
                fins.push(json!("kubernetes"));
                obj["spec"]["finalizers"] = Value::Array(fins);
            }
        }
        _ => {}
    }
}

/// Allocates service cluster IPs and node ports, as the apiserver's allocators do.
#[derive(Debug, Default, Clone)]
pub struct Allocator {
    next_ip: u32,
    next_port: u32,
}

impl Allocator {
    fn cluster_ip(&mut self) -> String {
        self.next_ip += 1;
        let n = self.next_ip;
        format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1)
    }
    fn node_port(&mut self) -> u32 {
        let p = 30000 + self.next_port % 2768;
        self.next_port += 1;
        p
    }
}

/// Top-level fields of each built-in type (the Go structs' JSON names). Only the top level
/// and `metadata` are checked: kube-sim carries no schemas below them.
fn known_fields(t: &ResourceType) -> Option<&'static [&'static str]> {
    Some(match (t.group, t.plural) {
        (_, _) if !t.builtin => return None,
        ("", "endpoints") => &["subsets"],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "events") => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        ("events.k8s.io", "events") => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        ("discovery.k8s.io", "endpointslices") => &["addressType", "endpoints", "ports"],
        ("", "serviceaccounts") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => &["rules", "aggregationRule"],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            &["subjects", "roleRef"]
        }
        ("networking.k8s.io", "ingressclasses") | ("coordination.k8s.io", "leases") => &["spec"],
        _ => &["spec", "status"],
    })
}

const META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Fields of a request body (an object, or a merge/strategic/apply patch) the type does not
/// have, as `fieldValidation` reports them (`spec.foo` style paths). Patch directives
/// (`$patch`, `$setElementOrder/...`) are not fields.
pub fn unknown_fields(t: &ResourceType, body: &Value) -> Vec<String> {
    let Some(known) = known_fields(t) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(m) = body.as_object() {
        for k in m.keys() {
            let ok = k.starts_with('$')
                || ["apiVersion", "kind", "metadata"].contains(&k.as_str())
                || known.contains(&k.as_str());
            if !ok {
                out.push(k.clone());
            }
        }
    }
    if let Some(m) = body.get("metadata").and_then(Value::as_object) {
        for k in m.keys() {
            if !k.starts_with('$') && !META_FIELDS.contains(&k.as_str()) {
                out.push(format!("metadata.{k}"));
            }
        }
    }
    out
}

/// Drops what `unknown_fields` reports, as the apiserver does when it does not reject them.
pub fn prune_unknown_fields(body: &mut Value, unknown: &[String]) {
    for path in unknown {
        match path.strip_prefix("metadata.") {
            Some(k) => {
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove(k);
                }
            }
            None => {
                if let Some(m) = body.as_object_mut() {
                    m.remove(path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_the_rfc_1123_rules() {
        assert!(is_dns1123_subdomain("a.b-c.d0"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_label("0abc"));
        assert!(!is_dns1035_label("0abc"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }
}
