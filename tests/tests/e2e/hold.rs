//! Missing inputs hold what is there (issue 10 §1): a TLS Secret or a Service deleted with
//! kubectl (a rotation, a redeploy) leaves the CLB's listeners, rules, certificates and
//! targets as they are, with a Warning of a stable reason; re-created, the CLB follows again.

use crate::support::engine::*;
use clb_ingress::handler::OutcomeStatus;
use clb_ingress_tests::kubectl::Kubectl;
use serde_json::json;

#[tokio::test]
async fn a_deleted_tls_secret_and_service_leave_the_clb_as_it_is_until_they_are_back() {
    let env = env().await;
    env.node("node-1", "ins-hhh1");
    env.node("node-2", "ins-hhh2");
    env.service("web", 80, 30080);
    env.service("api", 8080, 30081);
    env.cert_secret("tls-a", "cert-aaa");
    env.cert_secret("tls-b", "cert-bbb");
    let mut spec = rules(&[
        ("a.example.com", "/", "web", 80),
        ("b.example.com", "/", "api", 8080),
    ]);
    spec["tls"] = json!([
        {"hosts": ["a.example.com"], "secretName": "tls-a"},
        {"hosts": ["b.example.com"], "secretName": "tls-b"},
    ]);
    let uid = env.ingress("web", json!({}), spec);
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let before = env.lb_of(&uid).expect("a CLB");
    assert_eq!(listener_rules(&before, "HTTPS", 443).len(), 2);

    let kubectl = Kubectl::new(&env.kube);
    kubectl.ok(&["-n", NS, "delete", "secret", "tls-a"]).await;
    kubectl.ok(&["-n", NS, "delete", "service", "api"]).await;
    env.clb.clear_calls();
    for _ in 0..2 {
        env.reconcile("web").await;
    }
    assert!(
        writes(&env.clb.calls()).is_empty(),
        "nothing deleted or changed on the CLB: {:?}",
        env.clb.calls()
    );
    assert_eq!(env.lb_of(&uid).unwrap().listeners, before.listeners);
    let warnings = env.warnings("web");
    assert!(warnings.contains(&"E4010".to_string()), "{warnings:?}");
    assert!(warnings.contains(&"E4041".to_string()), "{warnings:?}");

    // Re-created (a rotated certificate, a Service with another nodePort): the CLB follows.
    env.cert_secret("tls-a", "cert-aaa2");
    env.service("api", 8080, 30091);
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let lb = env.lb_of(&uid).unwrap();
    let https = lb
        .listeners
        .iter()
        .find(|l| l.port == 443)
        .expect("HTTPS:443");
    let cert_of = |host: &str| {
        https
            .rules
            .iter()
            .find(|r| r.has_domain(host))
            .and_then(|r| r.certificate.as_ref())
            .map(|c| c.cert_id.clone())
    };
    assert_eq!(cert_of("a.example.com").as_deref(), Some("cert-aaa2"));
    assert_eq!(cert_of("b.example.com").as_deref(), Some("cert-bbb"));
    let b = listener_rules(&lb, "HTTPS", 443)
        .into_iter()
        .find(|(d, _, _)| d == "b.example.com")
        .unwrap();
    assert_eq!(b.2, vec!["ins-hhh1:30091@10", "ins-hhh2:30091@10"]);
}
