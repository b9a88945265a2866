use serde_json::json;

use super::*;
use crate::model::lb::{Backend, Protocol, SslMode};
use crate::model::ownership::{TAG_CLUSTER_ID, TAG_CREATED_BY, TAG_INGRESS_UID};

const CLUSTER: &str = "cls-1";

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("fixture")
}

pub(crate) fn ingress(
    annotations: serde_json::Value,
    spec: serde_json::Value,
) -> k8s_openapi::api::networking::v1::Ingress {
    from(json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1", "annotations": annotations},
        "spec": spec,
    }))
}

fn node(
    name: &str,
    provider: Option<&str>,
    label: Option<&str>,
    ready: bool,
    excluded: bool,
) -> k8s_openapi::api::core::v1::Node {
    let mut labels = serde_json::Map::new();
    if let Some(l) = label {
        labels.insert("cloud.tencent.com/node-instance-id".into(), l.into());
    }
    if excluded {
        labels.insert(
            "node.kubernetes.io/exclude-from-external-load-balancers".into(),
            "".into(),
        );
    }
    from(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"providerID": provider},
        "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
    }))
}

fn service(
    name: &str,
    ty: &str,
    ports: serde_json::Value,
) -> (String, k8s_openapi::api::core::v1::Service) {
    (
        name.to_string(),
        from(json!({"metadata": {"name": name}, "spec": {"type": ty, "ports": ports}})),
    )
}

pub(crate) fn secret(
    name: &str,
    data: serde_json::Value,
) -> (String, k8s_openapi::api::core::v1::Secret) {
    (
        name.to_string(),
        from(json!({"metadata": {"name": name}, "stringData": data})),
    )
}

pub(crate) fn path(p: &str, ty: &str, svc: &str, port: serde_json::Value) -> serde_json::Value {
    json!({"path": p, "pathType": ty, "backend": {"service": {"name": svc, "port": port}}})
}

/// Two Ready nodes (one by providerID, one by label), one NotReady, one excluded; Services
/// `web` (NodePort 80→30080, named "http"), `api` (LoadBalancer 8080→30081), `internal`
/// (ClusterIP).
pub(crate) fn base_view(ing: k8s_openapi::api::networking::v1::Ingress) -> ClusterView {
    ClusterView {
        ingress: ing,
        services: [
            service(
                "web",
                "NodePort",
                json!([{"name": "http", "port": 80, "nodePort": 30080}]),
            ),
            service(
                "api",
                "LoadBalancer",
                json!([{"port": 8080, "nodePort": 30081}]),
            ),
            service("internal", "ClusterIP", json!([{"port": 80}])),
        ]
        .into(),
        nodes: vec![
            node("n1", Some("qcloud:///800002/ins-aaa"), None, true, false),
            node("n2", None, Some("ins-bbb"), true, false),
            node("n3", Some("qcloud:///800002/ins-ccc"), None, false, false),
            node("n4", Some("qcloud:///800002/ins-ddd"), None, true, true),
        ],
        ..Default::default()
    }
}

pub(crate) fn manage(view: &ClusterView) -> Desired {
    match desire(view, CLUSTER) {
        Decision::Manage(d) => *d,
        other => panic!("expected Manage, got {other:?}"),
    }
}

/// The two Ready nodes serve; the NotReady one drains (weight 0 while bound, never
/// registered); the excluded one is no target.
fn node_targets(port: u16) -> BTreeMap<TargetKey, TargetWeight> {
    [
        ("ins-aaa", TargetWeight::Serve),
        ("ins-bbb", TargetWeight::Serve),
        ("ins-ccc", TargetWeight::Drain),
    ]
    .into_iter()
    .map(|(i, w)| {
        (
            TargetKey {
                backend: Backend::Instance(i.into()),
                port,
            },
            w,
        )
    })
    .collect()
}

fn rk(domain: Option<&str>, url: &str) -> RuleKey {
    RuleKey {
        domain: domain.map_or(Domain::Default, |d| Domain::Name(d.into())),
        url: url.into(),
    }
}

fn codes_of(d: &Desired) -> Vec<&'static str> {
    d.problems.iter().map(|p| p.code).collect()
}

#[test]
fn http_rules_use_ready_nodes_drain_not_ready_ones_and_skip_excluded_ones() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [path("/api", "Prefix", "web", json!({"number": 80}))]}}]}),
    )));
    assert_eq!(
        d.listeners.keys().copied().collect::<Vec<_>>(),
        vec![ListenerKey::HTTP_80]
    );
    let l = &d.listeners[&ListenerKey::HTTP_80];
    assert!(!l.sni && l.certificate.is_none());
    // Prefix /api: the exact rule and the /api/ prefix rule, same targets.
    for url in ["=/api", "/api/"] {
        assert_eq!(
            l.rules[&rk(Some("a.com"), url)].targets,
            node_targets(30080)
        );
    }
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.ingress, "shop/web");
}

#[test]
fn service_port_by_name_and_loadbalancer_type_work() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "Prefix", "web", json!({"name": "http"})),
            path("/v2", "Prefix", "api", json!({"number": 8080})),
        ]}}]}),
    )));
    let rules = &d.listeners[&ListenerKey::HTTP_80].rules;
    assert_eq!(rules[&rk(Some("a.com"), "/")].targets, node_targets(30080));
    assert_eq!(
        rules[&rk(Some("a.com"), "=/v2")].targets,
        node_targets(30081)
    );
}

#[test]
fn empty_host_wildcard_and_default_backend_map_to_domains() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({
            "defaultBackend": {"service": {"name": "api", "port": {"number": 8080}}},
            "rules": [
                {"http": {"paths": [path("/shop", "Prefix", "web", json!({"number": 80}))]}},
                {"host": "*.b.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
            ]
        }),
    )));
    let rules = &d.listeners[&ListenerKey::HTTP_80].rules;
    let keys: Vec<&RuleKey> = rules.keys().collect();
    assert_eq!(
        keys,
        vec![
            &rk(None, "/"),
            &rk(None, "/shop/"),
            &rk(None, "=/shop"),
            &rk(Some("*.b.com"), "/")
        ]
    );
    assert_eq!(rules[&rk(None, "/")].targets, node_targets(30081));
}

#[test]
fn host_less_root_rule_wins_over_default_backend_silently() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({
            "defaultBackend": {"service": {"name": "api", "port": {"number": 8080}}},
            "rules": [{"http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]
        }),
    )));
    assert_eq!(
        d.listeners[&ListenerKey::HTTP_80].rules[&rk(None, "/")].targets,
        node_targets(30080)
    );
    assert!(d.problems.is_empty());
}

#[test]
fn each_path_type_maps_to_its_clb_url() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/exact", "Exact", "web", json!({"number": 80})),
            path("/prefix/", "Prefix", "web", json!({"number": 80})),
            path("/impl/", "ImplementationSpecific", "web", json!({"number": 80})),
        ]}}]}),
    )));
    let urls: Vec<&str> = d.listeners[&ListenerKey::HTTP_80]
        .rules
        .keys()
        .map(|k| k.url.as_str())
        .collect();
    assert_eq!(urls, vec!["/impl/", "/prefix/", "=/exact", "=/prefix"]);
}

#[test]
fn broken_backends_are_skipped_with_codes_and_good_rules_stay() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/ok", "Prefix", "web", json!({"number": 80})),
            path("/missing", "Prefix", "nope", json!({"number": 80})),
            path("/clusterip", "Prefix", "internal", json!({"number": 80})),
            path("/noport", "Prefix", "web", json!({"number": 81})),
            path("/noname", "Prefix", "web", json!({"name": "grpc"})),
            path("/bad path", "Prefix", "web", json!({"number": 80})),
            {"path": "/res", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}},
        ]}}, {"host": "Bad_Host", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
           {"host": "empty.com"}]}),
    )));
    let rules = &d.listeners[&ListenerKey::HTTP_80].rules;
    assert_eq!(
        rules.keys().collect::<Vec<_>>(),
        vec![&rk(Some("a.com"), "/ok/"), &rk(Some("a.com"), "=/ok")]
    );
    assert_eq!(
        codes_of(&d),
        vec![
            "E4041",
            "E4047",
            "E4042",
            "E4042",
            "E4031",
            "UnsupportedBackend",
            "E4052",
            "E4013"
        ]
    );
    assert_eq!(d.problems[0].rule.as_deref(), Some("a.com/missing"));
}

#[test]
fn duplicate_rules_keep_the_first_and_warn() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/x", "Prefix", "web", json!({"number": 80})),
            path("/x/", "Prefix", "api", json!({"number": 8080})),
        ]}}]}),
    )));
    assert_eq!(
        d.listeners[&ListenerKey::HTTP_80].rules[&rk(Some("a.com"), "=/x")].targets,
        node_targets(30080)
    );
    // Both CLB rules of the second Prefix path are taken.
    assert_eq!(codes_of(&d), vec!["DuplicateRule", "DuplicateRule"]);
}

#[test]
fn service_without_ready_targets_keeps_its_rule_and_warns() {
    let mut view = base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]}),
    ));
    view.nodes.clear();
    let d = manage(&view);
    assert!(
        d.listeners[&ListenerKey::HTTP_80].rules[&rk(Some("a.com"), "/")]
            .targets
            .is_empty()
    );
    assert_eq!(codes_of(&d), vec!["NoReadyTargets"]);
}

#[test]
fn direct_access_binds_endpoint_ips_on_the_named_endpoint_port_and_drains_not_ready_ones() {
    let mut view = base_view(ingress(
        json!({"ingress.cloud.tencent.com/direct-access": "true"}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "Prefix", "web", json!({"number": 80})),
            path("/in", "Prefix", "internal", json!({"number": 80})),
        ]}}]}),
    ));
    view.endpoint_slices.insert(
        "web".into(),
        vec![from(json!({
            "metadata": {"name": "web-abc"},
            "addressType": "IPv4",
            "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.1.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.1.0.3"]},
            ],
        }))],
    );
    view.endpoint_slices.insert(
        "internal".into(),
        vec![from(json!({
            "metadata": {"name": "internal-x"},
            "addressType": "IPv4",
            "ports": [{"port": 9000}],
            "endpoints": [{"addresses": ["10.1.0.9"], "conditions": {"ready": true}}],
        }))],
    );
    let d = manage(&view);
    let rules = &d.listeners[&ListenerKey::HTTP_80].rules;
    let eni = |ip: &str, port| TargetKey {
        backend: Backend::EniIp(ip.into()),
        port,
    };
    assert_eq!(
        rules[&rk(Some("a.com"), "/")].targets,
        [
            (eni("10.1.0.1", 8080), TargetWeight::Serve),
            (eni("10.1.0.2", 8080), TargetWeight::Drain),
            (eni("10.1.0.3", 8080), TargetWeight::Serve)
        ]
        .into()
    );
    // ClusterIP is fine in direct mode.
    assert_eq!(
        rules[&rk(Some("a.com"), "=/in")].targets,
        [(eni("10.1.0.9", 9000), TargetWeight::Serve)].into()
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

fn tls_view(tls: serde_json::Value) -> ClusterView {
    let mut view = base_view(ingress(
        json!({}),
        json!({"tls": tls, "rules": [
            {"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
            {"host": "x.b.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
            {"http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}},
        ]}),
    ));
    view.secrets = [
        secret("default-cert", json!({"qcloud_cert_id": "cert-default"})),
        secret(
            "a-cert",
            json!({"qcloud_cert_id": "cert-a", "qcloud_ca_cert_id": "ca-a"}),
        ),
        secret("b-cert", json!({"qcloud_cert_id": " cert-b\n"})),
        secret("no-key", json!({"tls.crt": "x"})),
    ]
    .into();
    view
}

#[test]
fn tls_default_certificate_puts_every_rule_on_443_without_sni() {
    let d = manage(&tls_view(json!([{"secretName": "default-cert"}])));
    assert_eq!(
        d.listeners.keys().copied().collect::<Vec<_>>(),
        vec![ListenerKey::HTTPS_443]
    );
    let l = &d.listeners[&ListenerKey::HTTPS_443];
    assert!(!l.sni);
    assert_eq!(
        l.certificate,
        Some(Certificate::new("cert-default".into(), None))
    );
    assert_eq!(l.rules.len(), 3);
}

#[test]
fn per_host_certificates_turn_sni_on_with_wildcard_and_mutual() {
    let d = manage(&tls_view(json!([
        {"secretName": "default-cert"},
        {"hosts": ["a.com"], "secretName": "a-cert"},
        {"hosts": ["*.b.com"], "secretName": "b-cert"},
    ])));
    let l = &d.listeners[&ListenerKey::HTTPS_443];
    assert!(l.sni);
    let cert = |k: &RuleKey| l.rules[k].certificate.clone().unwrap();
    let a = cert(&rk(Some("a.com"), "/"));
    assert_eq!(
        (a.ssl_mode, a.cert_id.as_str(), a.ca_cert_id.as_deref()),
        (SslMode::Mutual, "cert-a", Some("ca-a"))
    );
    assert_eq!(cert(&rk(Some("x.b.com"), "/")).cert_id, "cert-b");
    assert_eq!(cert(&rk(None, "/")).cert_id, "cert-default");
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

#[test]
fn hosts_without_any_certificate_are_skipped_with_e4040() {
    let d = manage(&tls_view(
        json!([{"hosts": ["a.com"], "secretName": "a-cert"}]),
    ));
    let l = &d.listeners[&ListenerKey::HTTPS_443];
    assert_eq!(
        l.rules.keys().collect::<Vec<_>>(),
        vec![&rk(Some("a.com"), "/")]
    );
    assert_eq!(codes_of(&d), vec!["E4040", "E4040"]);
}

#[test]
fn broken_tls_entries_have_their_codes() {
    let d = manage(&tls_view(json!([
        {"hosts": ["a.com"], "secretName": ""},
        {"hosts": ["x.b.com"], "secretName": "missing"},
        {"secretName": "no-key"},
        {"secretName": "default-cert"},
        {"secretName": "b-cert"},
        {"hosts": ["a.com"], "secretName": "a-cert"},
        {"hosts": ["a.com"], "secretName": "b-cert"},
    ])));
    assert_eq!(
        codes_of(&d),
        vec!["E4009", "E4010", "E4011", "E4048", "E4049"]
    );
    // x.b.com's Secret is missing: its rule holds what the CLB has (issue 10 §1).
    assert_eq!(d.listeners[&ListenerKey::HTTPS_443].rules.len(), 2);
    assert_eq!(
        d.held[&ListenerKey::HTTPS_443],
        [rk(Some("x.b.com"), "/")].into()
    );
}

#[test]
fn tls_whose_only_certificate_secret_is_missing_holds_every_rule_and_makes_no_listener() {
    let d = manage(&tls_view(json!([{"secretName": "missing"}])));
    assert!(d.listeners.is_empty());
    assert_eq!(codes_of(&d), vec!["E4010"]);
    assert_eq!(d.held[&ListenerKey::HTTPS_443].len(), 3);
}

#[test]
fn out_of_class_is_release_and_bad_extensive_parameters_refuse_everything() {
    let view = base_view(ingress(
        json!({"kubernetes.io/ingress.class": "nginx"}),
        json!({}),
    ));
    assert_eq!(desire(&view, CLUSTER), Decision::Release);
    let view = base_view(ingress(
        json!({"kubernetes.io/ingress.extensiveParameters": "{oops"}),
        json!({}),
    ));
    match desire(&view, CLUSTER) {
        Decision::Invalid(p) => {
            assert_eq!(p.iter().map(|p| p.code).collect::<Vec<_>>(), vec!["E4026"])
        }
        other => panic!("{other:?}"),
    }
    let mut view = base_view(ingress(json!({}), json!({})));
    view.ingress.metadata.uid = None;
    assert!(
        matches!(desire(&view, CLUSTER), Decision::Invalid(p) if p[0].code == "IngressWithoutUID")
    );
}

#[test]
fn exist_lb_id_adopts_instead_of_creating() {
    let d = manage(&base_view(ingress(
        json!({"kubernetes.io/ingress.existLbId": "lb-42"}),
        json!({}),
    )));
    assert_eq!(
        d.load_balancer,
        LbSource::Adopt {
            lb_id: "lb-42".into()
        }
    );
}

#[test]
fn create_spec_has_tags_token_type_and_merged_parameters() {
    let d = manage(&base_view(ingress(
        json!({
            "kubernetes.io/ingress.subnetId": "subnet-1",
            "kubernetes.io/ingress.internetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
            "kubernetes.io/ingress.internetMaxBandwidthOut": "20",
            "kubernetes.io/ingress.extensiveParameters":
                r#"{"VipIsp":"CTCC","Tags":[{"TagKey":"team","TagValue":"web"}]}"#,
        }),
        json!({}),
    )));
    let LbSource::Create(spec) = &d.load_balancer else {
        panic!("expected Create")
    };
    assert_eq!(spec.lb_type, LbType::Internal);
    assert_eq!(spec.name, "cls-1_shop_web");
    assert_eq!(spec.tags[TAG_CREATED_BY], "yes");
    assert_eq!(spec.tags[TAG_CLUSTER_ID], CLUSTER);
    assert_eq!(spec.tags[TAG_INGRESS_UID], "uid-1");
    assert_eq!(spec.client_token.len(), 64);
    assert!(spec.client_token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(spec.client_token, client_token(CLUSTER, "uid-1"));
    assert_ne!(spec.client_token, client_token(CLUSTER, "uid-2"));
    assert_ne!(spec.client_token, client_token("cls-2", "uid-1"));
    let req = spec.create_request();
    assert_eq!(req["LoadBalancerType"], "INTERNAL");
    assert_eq!(req["Forward"], 1);
    assert_eq!(req["SubnetId"], "subnet-1");
    assert_eq!(req["VipIsp"], "CTCC");
    assert_eq!(req["ClientToken"], spec.client_token.as_str());
    assert_eq!(req["InternetAccessible"]["InternetMaxBandwidthOut"], 20);
    let tags = req["Tags"].as_array().unwrap();
    assert_eq!(tags.len(), 4);
    assert!(tags.contains(&json!({"TagKey": "tke-clusterId", "TagValue": CLUSTER})));
    assert!(tags.contains(&json!({"TagKey": "team", "TagValue": "web"})));
}

#[test]
fn lb_name_is_cut_to_80_characters() {
    assert_eq!(lb_name("c", &"n".repeat(100), "x").chars().count(), 80);
}

#[test]
fn desire_then_plan_then_apply_converges_to_an_empty_plan() {
    use crate::plan::{plan, CloudView};
    let view = tls_view(json!([
        {"secretName": "default-cert"},
        {"hosts": ["a.com"], "secretName": "a-cert"},
    ]));
    let d = manage(&view);
    let p = plan(&d, &CloudView::default()).unwrap();
    assert!(matches!(
        p.actions[0],
        crate::plan::Action::CreateLoadBalancer { .. }
    ));
    assert!(p.actions.iter().any(|a| matches!(
        a,
        crate::plan::Action::CreateListeners {
            protocol: Protocol::Https,
            sni: true,
            ..
        }
    )));
}

fn with_annotations(mut view: ClusterView, pairs: &[(&str, &str)]) -> ClusterView {
    let a = view
        .ingress
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    for (k, v) in pairs {
        a.insert(k.to_string(), v.to_string());
    }
    view
}

#[test]
fn rule_mix_splits_rules_between_http_and_https() {
    let view = with_annotations(
        tls_view(json!([{"secretName": "default-cert"}])),
        &[
            ("kubernetes.io/ingress.rule-mix", "true"),
            (
                "kubernetes.io/ingress.http-rules",
                r#"[{"host":"a.com","path":"/","backend":{"serviceName":"web","servicePort":"80"}},
                    {"backend":{"serviceName":"web","servicePort":"80"}}]"#,
            ),
            (
                "kubernetes.io/ingress.https-rules",
                r#"[{"path":"/","backend":{"serviceName":"web","servicePort":"80"}}]"#,
            ),
        ],
    );
    let d = manage(&view);
    let keys = |l: ListenerKey| d.listeners[&l].rules.keys().cloned().collect::<Vec<_>>();
    // a.com only in http-rules; the host-less rule in both; x.b.com in neither → HTTPS.
    assert_eq!(
        keys(ListenerKey::HTTP_80),
        vec![rk(None, "/"), rk(Some("a.com"), "/")]
    );
    assert_eq!(
        keys(ListenerKey::HTTPS_443),
        vec![rk(None, "/"), rk(Some("x.b.com"), "/")]
    );
    assert!(d.listeners[&ListenerKey::HTTP_80].certificate.is_none());
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

#[test]
fn rule_mix_without_tls_puts_everything_on_http() {
    let view = with_annotations(
        base_view(ingress(
            json!({}),
            json!({"rules": [{"host": "a.com", "http": {"paths": [path("/", "Prefix", "web", json!({"number": 80}))]}}]}),
        )),
        &[
            ("kubernetes.io/ingress.rule-mix", "true"),
            (
                "kubernetes.io/ingress.https-rules",
                r#"[{"host":"a.com","backend":{"serviceName":"web","servicePort":"80"}}]"#,
            ),
        ],
    );
    let d = manage(&view);
    assert_eq!(
        d.listeners.keys().copied().collect::<Vec<_>>(),
        vec![ListenerKey::HTTP_80]
    );
}

#[test]
fn bad_http_rules_refuse_the_ingress_with_e4022() {
    let view = with_annotations(
        base_view(ingress(json!({}), json!({}))),
        &[("kubernetes.io/ingress.http-rules", "[{")],
    );
    assert!(matches!(desire(&view, CLUSTER), Decision::Invalid(p) if p[0].code == "E4022"));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("true".to_string()),
            Just("lb-1".to_string()),
            Just("{}".to_string()),
            Just("[]".to_string()),
            Just("null".to_string()),
            Just("*.a.com".to_string()),
            Just("/".to_string()),
            "\\PC{0,12}",
        ]
    }

    const KEYS: [&str; 11] = [
        "kubernetes.io/ingress.class",
        "kubernetes.io/ingress.existLbId",
        "kubernetes.io/ingress.subnetId",
        "kubernetes.io/ingress.internetChargeType",
        "kubernetes.io/ingress.internetMaxBandwidthOut",
        "kubernetes.io/ingress.extensiveParameters",
        "ingress.cloud.tencent.com/direct-access",
        "kubernetes.io/ingress.rule-mix",
        "kubernetes.io/ingress.http-rules",
        "kubernetes.io/ingress.https-rules",
        "ingress.cloud.tencent.com/cross-vpc-id",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn desire_never_panics_and_every_problem_is_coded(
            annotations in proptest::collection::btree_map((0..KEYS.len()).prop_map(|i| KEYS[i].to_string()), text(), 0..6),
            hosts in proptest::collection::vec(proptest::option::of(text()), 0..4),
            paths in proptest::collection::vec((proptest::option::of(text()), 0..4usize, text(), proptest::option::of(0..70000i32)), 0..4),
            tls_hosts in proptest::option::of(proptest::collection::vec(text(), 0..3)),
        ) {
            let types = ["Exact", "Prefix", "ImplementationSpecific", "Weird"];
            let paths: Vec<serde_json::Value> = paths
                .into_iter()
                .map(|(p, t, svc, port)| json!({
                    "path": p, "pathType": types[t],
                    "backend": {"service": {"name": svc, "port": match port { Some(n) => json!({"number": n}), None => json!({"name": "http"}) }}}
                }))
                .collect();
            let rules: Vec<serde_json::Value> = hosts
                .into_iter()
                .map(|h| json!({"host": h, "http": {"paths": paths.clone()}}))
                .collect();
            let tls = tls_hosts.map(|h| json!([{"hosts": h, "secretName": "default-cert"}, {"secretName": "a-cert"}]));
            let mut view = tls_view(json!([]));
            view.ingress = ingress(json!(annotations), json!({"rules": rules, "tls": tls}));
            match desire(&view, CLUSTER) {
                Decision::Manage(d) => {
                    prop_assert!(d.problems.iter().all(|p| !p.code.is_empty()));
                    for (k, l) in &d.listeners {
                        prop_assert!(!l.rules.is_empty());
                        if k.protocol == Protocol::Https && !l.sni {
                            prop_assert!(l.certificate.is_some());
                        }
                        for r in l.rules.keys() {
                            prop_assert!(r.url.starts_with('/') || r.url.starts_with("=/"));
                            prop_assert!(r.url.len() <= 200);
                        }
                    }
                }
                Decision::Invalid(p) => prop_assert!(!p.is_empty()),
                Decision::Release | Decision::Skip { .. } => {}
            }
        }
    }
}

#[test]
fn the_next_client_token_after_a_dead_clb_is_shared_by_every_run_and_new() {
    let first = client_token(CLUSTER, "uid-1");
    let next = next_client_token(&first, "lb-dead1");
    assert_eq!(next, next_client_token(&first, "lb-dead1"));
    assert_ne!(next, first);
    assert_ne!(next, next_client_token(&first, "lb-dead2"));
    assert_eq!(next.len(), 64);
    assert!(next.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn an_ingress_class_that_does_not_exist_holds_and_never_releases() {
    // `ingressClassName` names a class the cluster does not have (yet, or for a moment):
    // no controller is named, so nothing is proven either way.
    let view = base_view(ingress(json!({}), json!({"ingressClassName": "edge"})));
    match desire(&view, CLUSTER) {
        Decision::Invalid(p) => assert_eq!(
            p.iter().map(|p| p.code).collect::<Vec<_>>(),
            vec!["IngressClassNotFound"]
        ),
        other => panic!("a missing IngressClass must hold, got {other:?}"),
    }
    // Positive proof still releases: the class exists and names another controller.
    let mut view = base_view(ingress(json!({}), json!({"ingressClassName": "edge"})));
    view.ingress_class = Some(from(json!({
        "metadata": {"name": "edge"}, "spec": {"controller": "k8s.io/ingress-nginx"}
    })));
    assert_eq!(desire(&view, CLUSTER), Decision::Release);
}

fn web_rules() -> serde_json::Value {
    json!({"rules": [{"host": "a.com", "http": {"paths": [path("/api", "Prefix", "web", json!({"number": 80}))]}}]})
}

#[test]
fn mode_skip_is_a_skip_decision_even_beside_a_malformed_annotation() {
    let view = base_view(ingress(
        json!({"ingress.cloud.tencent.com/mode": "skip", "kubernetes.io/ingress.extensiveParameters": "{",
               "kubernetes.io/ingress.existLbId": "lb-keep1"}),
        web_rules(),
    ));
    assert_eq!(
        desire(&view, CLUSTER),
        Decision::Skip {
            ingress_uid: "uid-1".into(),
            exist_lb_id: Some("lb-keep1".into()),
        }
    );
}

#[test]
fn retain_rides_in_the_create_tags_and_a_malformed_lifecycle_value_only_warns() {
    let d = manage(&base_view(ingress(
        json!({"ingress.cloud.tencent.com/loadbalance-retain": "true",
               "ingress.cloud.tencent.com/deletion-protection": "maybe"}),
        web_rules(),
    )));
    let LbSource::Create(spec) = &d.load_balancer else {
        panic!("expected a CLB to create");
    };
    assert_eq!(spec.tags["tke-lifecycle-owner"], "user");
    assert_eq!(codes_of(&d), vec![codes::INVALID_ANNOTATION]);
    assert_eq!(d.lifecycle.attributes.delete_protect, None);
    assert_eq!(d.listeners.len(), 1);
}

#[test]
fn a_missing_service_holds_its_rules_with_e4041_and_the_other_rules_go_on() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/gone", "ImplementationSpecific", "gone", json!({"number": 80})),
            path("/web", "ImplementationSpecific", "web", json!({"number": 80})),
        ]}}]}),
    )));
    let http = &d.listeners[&ListenerKey::HTTP_80];
    assert!(http.rules.contains_key(&rk(Some("a.com"), "/web")));
    assert!(!http.rules.contains_key(&rk(Some("a.com"), "/gone")));
    assert_eq!(
        d.held[&ListenerKey::HTTP_80],
        [rk(Some("a.com"), "/gone")].into()
    );
    assert!(codes_of(&d).contains(&codes::SERVICE_NOT_FOUND));
}

#[test]
fn a_service_that_changed_type_is_skipped_not_held() {
    let d = manage(&base_view(ingress(
        json!({}),
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "ImplementationSpecific", "internal", json!({"number": 80})),
        ]}}]}),
    )));
    assert!(d.held.is_empty());
    assert!(codes_of(&d).contains(&codes::SERVICE_TYPE));
}

#[test]
fn a_missing_tls_secret_holds_the_rules_it_would_certify_and_a_present_one_does_not() {
    let tls_ingress = |tls: serde_json::Value| {
        ingress(
            json!({}),
            json!({"tls": tls, "rules": [
                {"host": "a.com", "http": {"paths": [path("/", "ImplementationSpecific", "web", json!({"number": 80}))]}},
                {"host": "b.com", "http": {"paths": [path("/", "ImplementationSpecific", "web", json!({"number": 80}))]}},
            ]}),
        )
    };
    let mut view = base_view(tls_ingress(json!([
        {"hosts": ["a.com"], "secretName": "gone"},
        {"hosts": ["b.com"], "secretName": "tls-b"},
    ])));
    view.secrets = [secret("tls-b", json!({"qcloud_cert_id": "cert-b"}))].into();
    let d = manage(&view);
    let https = &d.listeners[&ListenerKey::HTTPS_443];
    assert!(https.sni);
    assert_eq!(
        https.rules.keys().collect::<Vec<_>>(),
        [&rk(Some("b.com"), "/")]
    );
    assert_eq!(
        d.held[&ListenerKey::HTTPS_443],
        [rk(Some("a.com"), "/")].into()
    );
    assert!(codes_of(&d).contains(&codes::TLS_SECRET_NOT_FOUND));

    // The default certificate's Secret missing: every host it would certify holds.
    let mut view = base_view(tls_ingress(json!([{"secretName": "gone"}])));
    view.secrets = [secret("other", json!({"qcloud_cert_id": "cert-x"}))].into();
    let d = manage(&view);
    assert!(d.listeners.is_empty());
    assert_eq!(d.held[&ListenerKey::HTTPS_443].len(), 2);
}

#[test]
fn a_failed_certificate_upload_holds_the_rules_it_would_certify_and_not_uploaded_yet_does_not() {
    let mut view = base_view(ingress(
        json!({}),
        json!({"tls": [{"hosts": ["a.com"], "secretName": "tls-a"}], "rules": [
            {"host": "a.com", "http": {"paths": [path("/", "ImplementationSpecific", "web", json!({"number": 80}))]}},
        ]}),
    ));
    view.secrets = [(
        "tls-a".to_string(),
        from(
            json!({"metadata": {"name": "tls-a"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "a2V5"}}),
        ),
    )]
    .into();

    // The look before the Lease: nothing uploaded yet, nothing held.
    let d = manage(&view);
    assert!(codes_of(&d).contains(&codes::CERTIFICATE_NOT_UPLOADED));
    assert!(d.held.is_empty());

    // The upload under the Lease failed: the rule the certificate serves is held.
    view.uploaded_certs.failed.insert(
        "tls-a".into(),
        "FailedOperation.CertificateParseFailed".into(),
    );
    let d = manage(&view);
    assert!(codes_of(&d).contains(&codes::CERTIFICATE_NOT_UPLOADED));
    assert_eq!(
        d.held[&ListenerKey::HTTPS_443],
        [rk(Some("a.com"), "/")].into()
    );
}

/// The view of an Ingress routing a.com/ to Service `web`, whose one EndpointSlice (port
/// "http" 8080) has these endpoints.
fn web_root_view(annotations: serde_json::Value, endpoints: serde_json::Value) -> ClusterView {
    let mut view = base_view(ingress(
        annotations,
        json!({"rules": [{"host": "a.com", "http": {"paths": [
            path("/", "Prefix", "web", json!({"number": 80})),
        ]}}]}),
    ));
    view.endpoint_slices.insert(
        "web".into(),
        vec![from(json!({
            "metadata": {"name": "web-abc"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": endpoints,
        }))],
    );
    view
}

fn root_targets(d: &Desired) -> &BTreeMap<TargetKey, TargetWeight> {
    &d.listeners[&ListenerKey::HTTP_80].rules[&rk(Some("a.com"), "/")].targets
}

#[test]
fn external_traffic_policy_local_registers_only_nodes_running_a_ready_endpoint() {
    let mut view = web_root_view(
        json!({}),
        json!([
            {"addresses": ["10.1.0.1"], "nodeName": "n1", "conditions": {"ready": true}},
            {"addresses": ["10.1.0.2"], "nodeName": "n2",
             "conditions": {"ready": false, "terminating": true}},
            {"addresses": ["10.1.0.3"], "nodeName": "n3", "conditions": {"ready": true}},
        ]),
    );
    let web = view.services.get_mut("web").unwrap();
    web.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let d = manage(&view);
    let ins = |i: &str| TargetKey {
        backend: Backend::Instance(i.into()),
        port: 30080,
    };
    // n1 serves; n2 only has a terminating endpoint and drains; n3 runs a ready endpoint but is
    // NotReady itself and drains; n4 is excluded; nodes without endpoints are no targets.
    assert_eq!(
        *root_targets(&d),
        BTreeMap::from([
            (ins("ins-aaa"), TargetWeight::Serve),
            (ins("ins-bbb"), TargetWeight::Drain),
            (ins("ins-ccc"), TargetWeight::Drain),
        ])
    );
    // Without endpoints on any node, the rule has no serving target and says so.
    view.endpoint_slices.clear();
    let d = manage(&view);
    assert!(root_targets(&d).is_empty());
    assert_eq!(codes_of(&d), vec!["NoReadyTargets"]);
}

#[test]
fn grace_shutdown_off_drops_terminating_and_not_ready_endpoints_at_once() {
    let view = web_root_view(
        json!({
            "ingress.cloud.tencent.com/direct-access": "true",
            "ingress.cloud.tencent.com/enable-grace-shutdown": "false",
            "ingress.cloud.tencent.com/enable-grace-shutdown-tkex": "false",
        }),
        json!([
            {"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": false, "terminating": true}},
            {"addresses": ["10.1.0.3"], "conditions": {"ready": false}},
        ]),
    );
    let d = manage(&view);
    assert_eq!(root_targets(&d).len(), 1);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

#[test]
fn a_pod_waiting_for_the_readiness_gate_is_registered_even_with_not_ready_grace_off() {
    use crate::model::readiness::{PodGate, READINESS_GATE};
    let mut view = web_root_view(
        json!({
            "ingress.cloud.tencent.com/direct-access": "true",
            "ingress.cloud.tencent.com/enable-grace-shutdown-tkex": "false",
        }),
        json!([
            {"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": false},
             "targetRef": {"kind": "Pod", "name": "web-2", "namespace": "default"}},
        ]),
    );
    // Without the Pod (not read, or gone) the not-ready endpoint is no target.
    assert_eq!(root_targets(&manage(&view)).len(), 1);
    let pod = from(json!({
        "metadata": {"name": "web-2", "uid": "u2", "resourceVersion": "5"},
        "spec": {"containers": [{"name": "c", "image": "i"}],
                 "readinessGates": [{"conditionType": READINESS_GATE}]},
    }));
    view.pods.insert("web-2".into(), PodGate::of(&pod));
    let d = manage(&view);
    let eni = TargetKey {
        backend: Backend::EniIp("10.1.0.2".into()),
        port: 8080,
    };
    assert_eq!(root_targets(&d).get(&eni), Some(&TargetWeight::Serve));
}
