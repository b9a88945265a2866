//! `meta.k8s.io/v1 Table` responses, as `kubectl get` asks for them (`Accept: ...;as=Table`),
//! with the columns the upstream printers (`pkg/printers/internalversion`) show.

use serde_json::{json, Value};

use super::resources::ResourceType;

/// kubectl's `duration.HumanDuration`, which the server uses for AGE cells.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    let d = h / 24;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value, now: jiff::Timestamp) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| human_duration(now.as_second() - t.as_second()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(x: String) -> String {
    if x.is_empty() {
        "<none>".into()
    } else {
        x
    }
}

fn lb_addresses(obj: &Value) -> String {
    arr(obj, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| {
            let ip = s(i, "/ip");
            if ip.is_empty() {
                s(i, "/hostname").to_string()
            } else {
                ip.to_string()
            }
        })
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Column names (without NAME/AGE framing decided per kind) and the cells of one object.
fn columns(t: &ResourceType) -> Vec<&'static str> {
    match (t.group, t.plural) {
        ("", "namespaces") => vec!["Name", "Status", "Age"],
        ("", "nodes") => vec!["Name", "Status", "Roles", "Age", "Version"],
        ("", "services") => vec![
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
        ],
        ("", "endpoints") => vec!["Name", "Endpoints", "Age"],
        ("", "secrets") => vec!["Name", "Type", "Data", "Age"],
        (_, "events") => vec!["Last Seen", "Type", "Reason", "Object", "Message"],
        ("networking.k8s.io", "ingresses") => {
            vec!["Name", "Class", "Hosts", "Address", "Ports", "Age"]
        }
        ("networking.k8s.io", "ingressclasses") => vec!["Name", "Controller", "Parameters", "Age"],
        ("discovery.k8s.io", "endpointslices") => {
            vec!["Name", "AddressType", "Ports", "Endpoints", "Age"]
        }
        ("coordination.k8s.io", "leases") => vec!["Name", "Holder", "Age"],
        _ => vec!["Name", "Age"],
    }
}

fn cells(t: &ResourceType, o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = s(o, "/metadata/name").to_string();
    let age = age(o, now);
    let row: Vec<String> = match (t.group, t.plural) {
        ("", "namespaces") => vec![name, s(o, "/status/phase").into(), age],
        ("", "nodes") => {
            let ready = arr(o, "/status/conditions")
                .iter()
                .find(|c| s(c, "/type") == "Ready")
                .map(|c| match s(c, "/status") {
                    "True" => "Ready",
                    "False" => "NotReady",
                    _ => "Unknown",
                })
                .unwrap_or("Unknown");
            let mut status = ready.to_string();
            if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                status,
                or_none(roles.join(",")),
                age,
                s(o, "/status/nodeInfo/kubeletVersion").into(),
            ]
        }
        ("", "services") => {
            let ty = s(o, "/spec/type");
            let ext = match ty {
                "LoadBalancer" => {
                    let a = lb_addresses(o);
                    if a.is_empty() {
                        "<pending>".into()
                    } else {
                        a
                    }
                }
                "ExternalName" => s(o, "/spec/externalName").into(),
                _ => "<none>".into(),
            };
            let ports: Vec<String> = arr(o, "/spec/ports")
                .iter()
                .map(|p| {
                    let port = p.get("port").map(Value::to_string).unwrap_or_default();
                    let proto = s(p, "/protocol");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                        _ => format!("{port}/{proto}"),
                    }
                })
                .collect();
            vec![
                name,
                ty.into(),
                or_none(s(o, "/spec/clusterIP").into()),
                ext,
                or_none(ports.join(",")),
                age,
            ]
        }
        ("", "endpoints") => {
            let mut eps = Vec::new();
            for sub in arr(o, "/subsets") {
                for a in arr(sub, "/addresses") {
                    for p in arr(sub, "/ports") {
                        eps.push(format!(
                            "{}:{}",
                            s(a, "/ip"),
                            p.get("port").map(Value::to_string).unwrap_or_default()
                        ));
                    }
                }
            }
            vec![name, or_none(eps.join(",")), age]
        }
        ("", "secrets") => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, s(o, "/type").into(), n.to_string(), age]
        }
        (_, "events") => {
            let (obj_ptr, msg_ptr) = if t.group.is_empty() {
                ("/involvedObject", "/message")
            } else {
                ("/regarding", "/note")
            };
            let involved = o.pointer(obj_ptr).cloned().unwrap_or(json!({}));
            let last = ["/lastTimestamp", "/deprecatedLastTimestamp", "/eventTime"]
                .iter()
                .map(|p| s(o, p))
                .find(|t| !t.is_empty())
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| human_duration(now.as_second() - t.as_second()))
                .unwrap_or_else(|| "<unknown>".into());
            vec![
                last,
                s(o, "/type").into(),
                s(o, "/reason").into(),
                format!(
                    "{}/{}",
                    s(&involved, "/kind").to_lowercase(),
                    s(&involved, "/name")
                ),
                s(o, msg_ptr).into(),
            ]
        }
        ("networking.k8s.io", "ingresses") => {
            let hosts: Vec<String> = arr(o, "/spec/rules")
                .iter()
                .map(|r| {
                    let h = s(r, "/host");
                    if h.is_empty() {
                        "*".to_string()
                    } else {
                        h.to_string()
                    }
                })
                .collect();
            let hosts = if hosts.is_empty() {
                "*".to_string()
            } else if hosts.len() > 4 {
                format!("{} + {} more...", hosts[..4].join(","), hosts.len() - 4)
            } else {
                hosts.join(",")
            };
            let ports = if arr(o, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                or_none(s(o, "/spec/ingressClassName").into()),
                hosts,
                lb_addresses(o),
                ports.into(),
                age,
            ]
        }
        ("networking.k8s.io", "ingressclasses") => {
            let params = o
                .pointer("/spec/parameters")
                .map(|p| {
                    let g = s(p, "/apiGroup");
                    let k = s(p, "/kind");
                    let n = s(p, "/name");
                    if g.is_empty() {
                        format!("{k}/{n}")
                    } else {
                        format!("{k}.{g}/{n}")
                    }
                })
                .unwrap_or_default();
            vec![name, s(o, "/spec/controller").into(), or_none(params), age]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = arr(o, "/ports")
                .iter()
                .filter_map(|p| p.get("port").map(Value::to_string))
                .collect();
            let eps: Vec<String> = arr(o, "/endpoints")
                .iter()
                .flat_map(|e| arr(e, "/addresses").iter())
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            let eps = if eps.len() > 3 {
                format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
            } else {
                eps.join(",")
            };
            vec![
                name,
                s(o, "/addressType").into(),
                or_none(ports.join(",")),
                or_none(eps),
                age,
            ]
        }
        ("coordination.k8s.io", "leases") => {
            vec![name, s(o, "/spec/holderIdentity").into(), age]
        }
        _ => vec![name, age],
    };
    row.into_iter().map(Value::String).collect()
}

/// The Table for these objects. `include_object` is the `includeObject` query parameter
/// (`None`, `Metadata` — the default — or `Object`).
pub fn table(t: &ResourceType, objects: &[Value], include_object: &str, rv: &str) -> Value {
    let now = jiff::Timestamp::now();
    let defs: Vec<Value> = columns(t)
        .into_iter()
        .map(|c| {
            let format = if c == "Name" { "name" } else { "" };
            json!({"name": c, "type": "string", "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => {
                    let mut full = o.clone();
                    full["apiVersion"] = json!(t.api_version());
                    full["kind"] = json!(t.kind);
                    full
                }
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }),
            };
            json!({"cells": cells(t, o, now), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn ages_print_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
