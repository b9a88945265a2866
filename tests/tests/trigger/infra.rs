//! The shipped trigger configuration agrees with what the decoders and routes expect.

use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml::Value as Yaml;

fn infra(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra")
        .join(path);
    std::fs::read_to_string(p).unwrap()
}

fn yaml(path: &str) -> Yaml {
    serde_yaml::from_str(&infra(path)).unwrap()
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn audit_policy_omits_request_received_and_never_sends_secret_bodies() {
    let policy = yaml("kubernetes/audit-policy.yaml");
    assert_eq!(policy["kind"].as_str(), Some("Policy"));
    assert!(strings(&policy["omitStages"]).contains(&"RequestReceived".to_string()));
    let rules = policy["rules"].as_sequence().unwrap();
    // First match wins: the first rule naming secrets must be at Metadata (or None).
    let secrets_rule = rules
        .iter()
        .find(|r| {
            r["resources"].as_sequence().is_some_and(|groups| {
                groups
                    .iter()
                    .any(|g| strings(&g["resources"]).iter().any(|x| x == "secrets"))
            })
        })
        .unwrap();
    assert_eq!(secrets_rule["level"].as_str(), Some("Metadata"));
    // Reads are dropped before anything else can match them.
    assert_eq!(rules[0]["level"].as_str(), Some("None"));
    assert!(strings(&rules[0]["verbs"]).contains(&"watch".to_string()));
}

#[test]
fn audit_policy_sends_every_resource_the_decoder_maps() {
    let text = infra("kubernetes/audit-policy.yaml");
    for resource in [
        "ingresses",
        "ingressclasses",
        "endpointslices",
        "services",
        "endpoints",
        "secrets",
        "nodes",
        "tkeserviceconfigs",
    ] {
        assert!(text.contains(&format!("\"{resource}\"")), "{resource}");
    }
}

#[test]
fn audit_webhook_kubeconfig_posts_to_the_audit_route_with_a_bearer_token() {
    let kc = yaml("kubernetes/audit-webhook-kubeconfig.yaml");
    let server = kc["clusters"][0]["cluster"]["server"].as_str().unwrap();
    assert!(
        server.starts_with("https://") && server.ends_with("/v1/audit"),
        "{server}"
    );
    assert!(kc["users"][0]["user"]["token"].as_str().is_some());
}

#[test]
fn event_exporter_layout_carries_the_fields_the_event_decoder_reads() {
    let cm = yaml("kubernetes/event-exporter.yaml");
    let config: Yaml = serde_yaml::from_str(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let webhook = &config["receivers"][0]["webhook"];
    assert!(webhook["endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/v1/events"));
    assert!(webhook["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .starts_with("Bearer "));
    let layout = webhook["layout"].as_mapping().unwrap();
    for key in [
        "kind",
        "namespace",
        "name",
        "component",
        "reportingController",
    ] {
        assert!(layout.contains_key(key), "{key}");
    }
    // The layout must not be mistaken for a timer or an audit event.
    assert!(!layout.contains_key("Type") && !layout.contains_key("auditID"));
}

#[test]
fn audit_policy_drops_writes_of_the_service_account_rbac_yaml_creates() {
    let mut accounts = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&infra("kubernetes/rbac.yaml")) {
        let doc = Yaml::deserialize(doc).unwrap();
        if doc["kind"].as_str() == Some("ServiceAccount") {
            let ns = doc["metadata"]["namespace"].as_str().unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap();
            accounts.push(format!("system:serviceaccount:{ns}:{name}"));
        }
    }
    assert_eq!(accounts.len(), 1, "rbac.yaml defines one ServiceAccount");
    let policy = yaml("kubernetes/audit-policy.yaml");
    let dropped: Vec<String> = policy["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|rule| rule["level"].as_str() == Some("None"))
        .flat_map(|rule| strings(&rule["users"]))
        .collect();
    assert!(
        dropped.contains(&accounts[0]),
        "audit policy drops {dropped:?}, rbac.yaml creates {}",
        accounts[0]
    );
}

#[test]
fn tke_service_config_crd_serves_the_kind_the_function_reads_and_rbac_lets_it() {
    let crd = yaml("kubernetes/tkeserviceconfig-crd.yaml");
    assert_eq!(crd["spec"]["group"].as_str(), Some("cloud.tencent.com"));
    assert_eq!(crd["spec"]["scope"].as_str(), Some("Namespaced"));
    assert_eq!(
        crd["spec"]["names"]["plural"].as_str(),
        Some("tkeserviceconfigs")
    );
    assert_eq!(
        crd["spec"]["names"]["kind"].as_str(),
        Some("TkeServiceConfig")
    );
    assert_eq!(
        crd["spec"]["versions"][0]["name"].as_str(),
        Some("v1alpha1")
    );
    let rbac = infra("kubernetes/rbac.yaml");
    let rule = rbac
        .split("- apiGroups:")
        .find(|r| r.contains("\"cloud.tencent.com\""))
        .expect("an RBAC rule for cloud.tencent.com");
    assert!(rule.contains("\"tkeserviceconfigs\"") && rule.contains("\"get\""));
}
