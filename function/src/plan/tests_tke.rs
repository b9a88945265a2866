//! Golden plans of the TKE features (listen-ports, Prefix paths, defaultBackend as the
//! default server), from an Ingress through `desire` to `plan`: what a new Ingress costs,
//! and that the steady state is zero writes.

use serde_json::json;

use super::sim::apply_to_view;
use super::tests::{check_golden, converge};
use super::*;
use crate::model::desired::tests::{base_view, ingress, manage, path, secret};
use crate::model::ClusterView;

fn view(annotations: serde_json::Value, spec: serde_json::Value) -> ClusterView {
    base_view(ingress(annotations, spec))
}

/// Converges from nothing, returns the first plan and checks that the next one is empty.
fn first_plan_then_steady(d: &Desired) -> (Plan, CloudView) {
    let mut cloud = CloudView::default();
    let first = converge(d, &mut cloud);
    let again = plan(d, &cloud).expect("plan");
    assert!(
        again.is_empty(),
        "steady state must be zero writes:\n{again}"
    );
    (first, cloud)
}

fn our_listeners(cloud: &CloudView) -> Vec<String> {
    let lb = cloud.load_balancer.as_ref().expect("CLB");
    let mut out: Vec<String> = lb.listeners.iter().map(|l| l.key().to_string()).collect();
    out.sort();
    out
}

#[test]
fn golden_listen_ports_put_the_rules_on_every_listed_listener_of_their_protocol() {
    let mut v = view(
        json!({
            "ingress.cloud.tencent.com/listen-ports": r#"[{"HTTP":80},{"HTTPS":443},{"HTTP":8080},{"HTTPS":8443}]"#,
            "kubernetes.io/ingress.rule-mix": "true",
            "kubernetes.io/ingress.http-rules": r#"[{"host":"a.com","path":"/","backend":{"serviceName":"web","servicePort":"80"}}]"#,
        }),
        json!({"tls": [{"secretName": "cert"}], "rules": [
            {"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
            {"host": "b.com", "http": {"paths": [path("/", "Prefix", "api", json!({"number": 8080}))]}},
        ]}),
    );
    v.secrets = [secret("cert", json!({"qcloud_cert_id": "cert-1"}))].into();
    let d = manage(&v);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let (first, cloud) = first_plan_then_steady(&d);
    check_golden("listen_ports", &first.to_string());
    assert_eq!(
        our_listeners(&cloud),
        vec!["HTTP:80", "HTTP:8080", "HTTPS:443", "HTTPS:8443"]
    );
    let lb = cloud.load_balancer.as_ref().unwrap();
    for l in &lb.listeners {
        let domains: Vec<&str> = l.rules.iter().map(|r| r.domain.as_str()).collect();
        match l.protocol {
            // a.com is named by http-rules (HTTP) and, being named only there, not on HTTPS.
            Protocol::Http => assert_eq!(domains, vec!["a.com"], "{}", l.key()),
            _ => assert_eq!(domains, vec!["b.com"], "{}", l.key()),
        }
    }
}

#[test]
fn changing_listen_ports_moves_the_rules_and_deletes_the_unlisted_listener() {
    let spec = json!({"rules": [{"host": "a.com", "http": {"paths": [
        path("/", "Prefix", "web", json!({"number": 80}))]}}]});
    let d = manage(&view(
        json!({"ingress.cloud.tencent.com/listen-ports": r#"[{"HTTP":80},{"HTTP":8080}]"#}),
        spec.clone(),
    ));
    let (_, mut cloud) = first_plan_then_steady(&d);
    assert_eq!(our_listeners(&cloud), vec!["HTTP:80", "HTTP:8080"]);

    let moved = manage(&view(
        json!({"ingress.cloud.tencent.com/listen-ports": r#"[{"HTTP":9090}]"#}),
        spec.clone(),
    ));
    let p = converge(&moved, &mut cloud);
    check_golden("listen_ports_changed", &p.to_string());
    assert_eq!(our_listeners(&cloud), vec!["HTTP:9090"]);

    // Removing the annotation restores TKE's default HTTP:80.
    let removed = manage(&view(json!({}), spec));
    converge(&removed, &mut cloud);
    assert_eq!(our_listeners(&cloud), vec!["HTTP:80"]);
    assert!(plan(&removed, &cloud).unwrap().is_empty());
}

#[test]
fn malformed_listen_ports_refuse_the_ingress_so_nothing_changes() {
    let v = view(
        json!({"ingress.cloud.tencent.com/listen-ports": r#"[{"HTTP":"eighty"}]"#}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]}),
    );
    match crate::model::desire(&v, "cls-1") {
        crate::model::Decision::Invalid(problems) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].code, "InvalidListenPorts");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_protocol_without_a_listed_port_skips_its_rules_with_a_warning() {
    let d = manage(&view(
        json!({"ingress.cloud.tencent.com/listen-ports": r#"[{"HTTPS":443}]"#}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]}),
    ));
    assert!(d.listeners.is_empty());
    assert_eq!(
        d.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
        vec!["InvalidListenPorts"]
    );
}

#[test]
fn golden_prefix_paths_cost_two_rules_exact_and_implementation_specific_one() {
    let d = manage(&view(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "Prefix", "web", json!({"number": 80})),
            path("/api", "Prefix", "api", json!({"number": 8080})),
            path("/static/", "Prefix", "web", json!({"number": 80})),
            path("/health", "Exact", "web", json!({"number": 80})),
            path("/legacy", "ImplementationSpecific", "web", json!({"number": 80})),
        ]}}]}),
    ));
    let (first, cloud) = first_plan_then_steady(&d);
    check_golden("prefix_paths", &first.to_string());
    let lb = cloud.load_balancer.as_ref().unwrap();
    let mut urls: Vec<&str> = lb.listeners[0]
        .rules
        .iter()
        .map(|r| r.url.as_str())
        .collect();
    urls.sort();
    // 5 Ingress paths → 7 CLB rules: `/` and each non-root Prefix path's two.
    assert_eq!(
        urls,
        vec!["/", "/api/", "/legacy", "/static/", "=/api", "=/health", "=/static"]
    );
}

fn default_server_domains(cloud: &CloudView) -> Vec<String> {
    let lb = cloud.load_balancer.as_ref().unwrap();
    let mut out: Vec<String> = lb.listeners[0]
        .rules
        .iter()
        .filter(|r| r.default_server)
        .map(|r| r.domain.clone())
        .collect();
    out.dedup();
    out
}

#[test]
fn golden_default_backend_is_the_listeners_default_server_from_the_start() {
    let d = manage(&view(
        json!({}),
        json!({
            "defaultBackend": {"service": {"name": "api", "port": {"number": 8080}}},
            "rules": [{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}],
        }),
    ));
    let (first, cloud) = first_plan_then_steady(&d);
    check_golden("default_backend", &first.to_string());
    assert_eq!(default_server_domains(&cloud), vec![sim::SIM_VIP]);
}

#[test]
fn default_backend_added_later_moves_the_default_server_to_the_vip() {
    let rules = json!([{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]);
    let without = manage(&view(json!({}), json!({"rules": rules.clone()})));
    let (_, mut cloud) = first_plan_then_steady(&without);
    assert_eq!(default_server_domains(&cloud), vec!["a.com"]);

    let with = manage(&view(
        json!({}),
        json!({"rules": rules, "defaultBackend": {"service": {"name": "api", "port": {"number": 8080}}}}),
    ));
    let p = converge(&with, &mut cloud);
    check_golden("default_backend_added", &p.to_string());
    assert_eq!(default_server_domains(&cloud), vec![sim::SIM_VIP]);
    assert!(plan(&with, &cloud).unwrap().is_empty());

    // Someone moves the default back to a.com in the console: the next run moves it again.
    let lb = cloud.load_balancer.as_mut().unwrap();
    for r in &mut lb.listeners[0].rules {
        r.default_server = r.domain == "a.com";
    }
    let repair = plan(&with, &cloud).unwrap();
    assert_eq!(repair.actions.len(), 1, "{repair}");
    assert!(matches!(repair.actions[0], Action::SetDefaultServer { .. }));
    apply_to_view(&repair, &mut cloud).unwrap();
    assert!(plan(&with, &cloud).unwrap().is_empty());
}
