//! Golden plans of redirects (auto-rewrite, auto-rewrite-code, rewrite entries,
//! rewrite-support, rule-mix-both): added after the rules they join, removed before them,
//! console redirects left alone unless claimed, steady state zero writes.

use serde_json::json;

use super::*;
use crate::model::desired::tests::{base_view, ingress, manage, path, secret};
use crate::model::ClusterView;

const AUTO: &str = "ingress.cloud.tencent.com/auto-rewrite";
const CODES: &str = "ingress.cloud.tencent.com/auto-rewrite-code";
const SUPPORT: &str = "ingress.cloud.tencent.com/rewrite-support";
const MIX_BOTH: &str = "kubernetes.io/ingress.rule-mix-both";

fn tls_view(annotations: serde_json::Value) -> ClusterView {
    let mut v = base_view(ingress(
        annotations,
        json!({"tls": [{"secretName": "cert"}], "rules": [
            {"host": "a.com", "http": {"paths": [path("/", "ImplementationSpecific", "web", json!({"number": 80}))]}},
            {"host": "b.com", "http": {"paths": [path("/api", "ImplementationSpecific", "api", json!({"number": 8080}))]}},
        ]}),
    ));
    v.secrets = [secret("cert", json!({"qcloud_cert_id": "cert-1"}))].into();
    v
}

/// Plans, applies and checks that the very next plan is empty (steady state: zero writes).
fn step(d: &Desired, cloud: &mut CloudView) -> Plan {
    let p = converge(d, cloud);
    let again = plan(d, cloud).expect("plan");
    assert!(
        again.is_empty(),
        "steady state must be zero writes:\n{again}"
    );
    p
}

/// (source domain+url, target domain+url, code) of every redirect on the CLB.
fn redirects(cloud: &CloudView) -> Vec<(String, String, String, Option<u16>)> {
    let lb = cloud.load_balancer.as_ref().expect("CLB");
    let mut out = Vec::new();
    for l in &lb.listeners {
        for r in &l.rules {
            let Some(to) = &r.redirect else { continue };
            let (tl, tr) = lb
                .listeners
                .iter()
                .find_map(|t| {
                    t.rules
                        .iter()
                        .find(|x| x.location_id == to.target_location_id)
                        .map(|x| (t, x))
                })
                .expect("target rule");
            out.push((
                l.key().to_string(),
                format!("{}{}", r.domain, r.url),
                format!("{} {}{}", tl.key(), tr.domain, tr.url),
                to.code,
            ));
        }
    }
    out.sort();
    out
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| {
            a.to_string()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn golden_auto_rewrite_creates_the_http_twins_then_redirects_them_then_nothing() {
    let d = manage(&tls_view(json!({AUTO: "true"})));
    let mut cloud = CloudView::default();
    let p = step(&d, &mut cloud);
    check_golden("auto_rewrite", &p.to_string());
    // The redirects come after the rules and targets they join.
    let k = kinds(&p);
    let at = |name: &str| k.iter().position(|x| x == name).expect(name);
    assert!(at("ManualRewrite") > at("CreateRules") && at("ManualRewrite") > at("RegisterTargets"));
    assert_eq!(
        redirects(&cloud),
        vec![
            (
                "HTTP:80".into(),
                "a.com/".into(),
                "HTTPS:443 a.com/".into(),
                Some(302)
            ),
            (
                "HTTP:80".into(),
                "b.com/api".into(),
                "HTTPS:443 b.com/api".into(),
                Some(302)
            ),
        ]
    );
}

#[test]
fn golden_auto_rewrite_code_change_replaces_only_that_hosts_redirect() {
    let mut cloud = CloudView::default();
    step(&manage(&tls_view(json!({AUTO: "true"}))), &mut cloud);
    let changed = manage(&tls_view(json!({
        AUTO: "true",
        CODES: r#"{"rewriteCodeInfos":[{"host":"b.com","rewriteCode":307}]}"#,
    })));
    let p = step(&changed, &mut cloud);
    check_golden("auto_rewrite_code_changed", &p.to_string());
    assert_eq!(kinds(&p), vec!["DeleteRewrite", "ManualRewrite"]);
    assert_eq!(redirects(&cloud)[1].3, Some(307));
    assert_eq!(redirects(&cloud)[0].3, Some(302));
}

#[test]
fn golden_removing_auto_rewrite_deletes_the_redirects_before_the_twin_rules() {
    let mut cloud = CloudView::default();
    step(&manage(&tls_view(json!({AUTO: "true"}))), &mut cloud);
    let p = step(&manage(&tls_view(json!({}))), &mut cloud);
    check_golden("auto_rewrite_removed", &p.to_string());
    assert_eq!(kinds(&p)[0], "DeleteRewrite");
    assert!(redirects(&cloud).is_empty());
    let lb = cloud.load_balancer.as_ref().unwrap();
    assert_eq!(
        lb.listeners.len(),
        1,
        "the HTTP:80 listener of the twins is gone"
    );
    // auto-rewrite: "false" ends in the same place.
    let mut cloud = CloudView::default();
    step(&manage(&tls_view(json!({AUTO: "true"}))), &mut cloud);
    step(&manage(&tls_view(json!({AUTO: "false"}))), &mut cloud);
    assert!(redirects(&cloud).is_empty());
}

#[test]
fn golden_rewrite_entries_add_a_redirect_only_rule_and_its_redirect() {
    let v = tls_view(json!({
        SUPPORT: "true",
        "kubernetes.io/ingress.rule-mix": "true",
        "kubernetes.io/ingress.http-rules": r#"[{"host":"a.com","path":"/old","rewrite":{"port":443,"host":"a.com","path":"/"}}]"#,
    }));
    let d = manage(&v);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let mut cloud = CloudView::default();
    let p = step(&d, &mut cloud);
    check_golden("rewrite_entries", &p.to_string());
    assert_eq!(
        redirects(&cloud),
        vec![(
            "HTTP:80".into(),
            "a.com/old".into(),
            "HTTPS:443 a.com/".into(),
            Some(301)
        )]
    );
}

/// A CLB where both a.com/ rules exist (rule-mix-both) and the console added a.com/ HTTP →
/// HTTPS.
fn with_console_redirect(d: &Desired) -> CloudView {
    let mut cloud = CloudView::default();
    step(d, &mut cloud);
    let lb = cloud.load_balancer.as_mut().unwrap();
    let https = lb
        .listeners
        .iter()
        .find(|l| l.key() == ListenerKey::HTTPS_443)
        .unwrap();
    let to = CloudRedirect {
        target_listener_id: https.id.clone(),
        target_location_id: https.rules[0].location_id.clone(),
        code: Some(301),
        take_url: false,
    };
    let http = lb
        .listeners
        .iter_mut()
        .find(|l| l.key() == ListenerKey::HTTP_80)
        .unwrap();
    http.rules[0].redirect = Some(to);
    cloud
}

#[test]
fn a_console_redirect_is_left_alone_unless_rewrite_support_claims_the_redirects() {
    let both = manage(&tls_view(json!({MIX_BOTH: "true"})));
    let cloud = with_console_redirect(&both);
    assert!(plan(&both, &cloud).unwrap().is_empty());

    let claimed = manage(&tls_view(json!({MIX_BOTH: "true", SUPPORT: "false"})));
    let mut cloud = with_console_redirect(&claimed);
    let p = step(&claimed, &mut cloud);
    assert_eq!(kinds(&p), vec!["DeleteRewrite"]);
    assert!(redirects(&cloud).is_empty());
}

#[test]
fn a_console_redirect_joining_a_rule_the_plan_deletes_goes_first() {
    let both = manage(&tls_view(json!({MIX_BOTH: "true"})));
    let mut cloud = with_console_redirect(&both);
    // Without rule-mix-both the HTTP:80 listener and its rules go.
    let p = step(&manage(&tls_view(json!({}))), &mut cloud);
    assert_eq!(kinds(&p), vec!["DeleteRewrite", "DeleteListeners"]);
}

#[test]
fn release_of_an_adopted_clb_deletes_its_redirects_before_its_listeners() {
    let d = manage(&tls_view(json!({
        AUTO: "true",
        "kubernetes.io/ingress.existLbId": "lb-user1",
    })));
    let mut cloud = CloudView {
        load_balancer: Some(CloudLb {
            id: "lb-user1".into(),
            name: "user".into(),
            lb_type: LbType::Open,
            vips: vec![super::super::sim::SIM_VIP.into()],
            domain: None,
            status: 1,
            tags: BTreeMap::new(),
            listeners: Vec::new(),
            attributes: Default::default(),
        }),
    };
    step(&d, &mut cloud);
    assert_eq!(redirects(&cloud).len(), 2);
    let p = plan_release(&cloud, IngressFact::Gone, "cls-1", "uid-1").unwrap();
    check_golden("release_adopted_redirects", &p.to_string());
    apply_to_view(&p, &mut cloud).expect("the API accepts the release in this order");
    assert!(cloud.load_balancer.unwrap().listeners.is_empty());
}
