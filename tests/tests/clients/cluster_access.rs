//! The function's cluster access (`clb_ingress::cluster`) against kube-sim, through the real
//! kube client over loopback HTTP: the view of an Ingress, status and annotation writes,
//! Events with series, and the per-Ingress Lease under contention.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clb_ingress::cluster::{
    lease_name, Acquire, ClusterClient, ClusterError, ConfigSource, EventOutcome, EventRecord,
    EventType, WriteOutcome, DIRTY_ANNOTATION, LB_ID_ANNOTATION,
};
use clb_ingress::identity;
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressLoadBalancerIngress};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

const NS: &str = "shop";
const LEASE_SECONDS: i32 = 600;

struct Fixture {
    sim: KubeSimHandle,
    admin: kube::Client,
    cluster: ClusterClient,
}

async fn fixture() -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = kube_sim::spawn(KubeSimConfig::default())
        .await
        .expect("kube-sim starts");
    let admin = sim.client().await;
    let cluster = ClusterClient::from_kubeconfig_yaml(&sim.kubeconfig_yaml())
        .await
        .expect("cluster client from kube-sim kubeconfig");
    let fixture = Fixture {
        sim,
        admin,
        cluster,
    };
    fixture
        .create_cluster_scoped::<Namespace>(json!({"metadata": {"name": NS}}))
        .await;
    fixture
}

impl Fixture {
    async fn create<K>(&self, value: serde_json::Value) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(value).expect("fixture object");
        Api::<K>::namespaced(self.admin.clone(), NS)
            .create(&PostParams::default(), &object)
            .await
            .expect("create fixture object")
    }

    async fn create_cluster_scoped<K>(&self, value: serde_json::Value) -> K
    where
        K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(value).expect("fixture object");
        Api::<K>::all(self.admin.clone())
            .create(&PostParams::default(), &object)
            .await
            .expect("create fixture object")
    }

    async fn ingress(&self, name: &str) -> Ingress {
        Api::<Ingress>::namespaced(self.admin.clone(), NS)
            .get(name)
            .await
            .expect("ingress")
    }

    fn requests(&self) -> usize {
        self.sim.request_log().len()
    }
}

fn node(name: &str, instance: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"providerID": format!("qcloud:///100003/{instance}")},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn nodeport_service(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "NodePort", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}
    })
}

fn slice(name: &str, service: &str, ip: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

fn web_ingress(annotations: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": "web", "namespace": NS, "annotations": annotations},
        "spec": {
            "ingressClassName": "qcloud",
            "defaultBackend": {"service": {"name": "svc-a", "port": {"number": 80}}},
            "tls": [{"hosts": ["a.example.com"], "secretName": "cert-a"},
                    {"hosts": ["b.example.com"], "secretName": "cert-missing"}],
            "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc-missing", "port": {"number": 80}}}}
            ]}}]
        }
    })
}

fn tke_service_config_api(client: kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cloud.tencent.com", "v1alpha1", "TkeServiceConfig"),
        "tkeserviceconfigs",
    );
    Api::namespaced_with(client, NS, &resource)
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    keys.map(String::as_str).collect()
}

#[tokio::test]
async fn view_reads_backends_nodes_class_and_secrets_stripped_of_tls_key() {
    let f = fixture().await;
    f.create::<Service>(nodeport_service("svc-a")).await;
    f.create::<Service>(nodeport_service("svc-unrelated")).await;
    f.create_cluster_scoped::<Node>(node("node-1", "ins-aaa111"))
        .await;
    f.create_cluster_scoped::<Node>(node("node-2", "ins-bbb222"))
        .await;
    f.create_cluster_scoped::<IngressClass>(json!({
        "metadata": {"name": "qcloud"},
        "spec": {"controller": identity::INGRESS_CLASS_CONTROLLER}
    }))
    .await;
    f.create::<Secret>(json!({
        "metadata": {"name": "cert-a", "namespace": NS,
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"tls.key\":\"S0VZ\"}}"}},
        "type": "Opaque",
        "data": {"qcloud_cert_id": "Y2VydC0x", "tls.key": "S0VZ", "tls.crt": "Q1JU"}
    }))
    .await;
    f.create::<Ingress>(web_ingress(json!({
        "ingress.cloud.tencent.com/tke-service-config": "not-there"
    })))
    .await;

    let view = f
        .cluster
        .view(NS, "web")
        .await
        .expect("view")
        .expect("ingress exists");

    assert_eq!(view.ingress.metadata.name.as_deref(), Some("web"));
    assert!(view.ingress.metadata.resource_version.is_some());
    assert_eq!(names(view.services.keys()), vec!["svc-a"]);
    assert!(view.endpoint_slices.is_empty());
    let nodes: BTreeSet<_> = view
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(nodes, BTreeSet::from(["node-1".into(), "node-2".into()]));
    assert_eq!(
        view.ingress_class
            .as_ref()
            .and_then(|c| c.metadata.name.as_deref()),
        Some("qcloud")
    );
    assert_eq!(names(view.secrets.keys()), vec!["cert-a"]);
    let secret = &view.secrets["cert-a"];
    let data = secret.data.as_ref().expect("secret data");
    // The public chain stays (its hash marks an uploaded certificate); the key never does.
    assert_eq!(names(data.keys()), vec!["qcloud_cert_id", "tls.crt"]);
    assert!(!data.contains_key("tls.key"));
    assert_eq!(data["qcloud_cert_id"].0, b"cert-1".to_vec());
    assert!(secret.metadata.annotations.is_none());
    assert!(view.tke_service_config.is_none());
}

#[tokio::test]
async fn every_request_names_us_with_user_agent_and_a_unique_audit_id() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let before = f.requests();
    f.cluster.view(NS, "web").await.expect("view");
    let ours = &f.sim.request_log()[before..];
    // Ingress, IngressClass, 2 Services, Node list, 2 Secrets.
    assert_eq!(ours.len(), 7, "{ours:?}");
    let ids: BTreeSet<_> = ours.iter().map(|r| r.audit_id.clone()).collect();
    assert_eq!(ids.len(), ours.len());
    for record in ours {
        assert_eq!(
            record.user_agent.as_deref(),
            Some(identity::user_agent().as_str())
        );
        assert!(
            record.audit_id.starts_with(identity::AUDIT_ID_PREFIX),
            "{record:?}"
        );
    }
}

#[tokio::test]
async fn direct_access_view_reads_endpoint_slices_by_service_label_and_no_nodes() {
    let f = fixture().await;
    f.create::<Service>(nodeport_service("svc-a")).await;
    f.create_cluster_scoped::<Node>(node("node-1", "ins-aaa111"))
        .await;
    f.create::<EndpointSlice>(slice("svc-a-x1", "svc-a", "10.0.0.1"))
        .await;
    f.create::<EndpointSlice>(slice("svc-a-x2", "svc-a", "10.0.0.2"))
        .await;
    f.create::<EndpointSlice>(slice("svc-a-long-name", "other", "10.0.0.3"))
        .await;
    f.create::<Ingress>(web_ingress(json!({
        "ingress.cloud.tencent.com/direct-access": "true"
    })))
    .await;

    let before = f.requests();
    let view = f.cluster.view(NS, "web").await.unwrap().unwrap();
    assert_eq!(names(view.endpoint_slices.keys()), vec!["svc-a"]);
    let slices: BTreeSet<_> = view.endpoint_slices["svc-a"]
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(
        slices,
        BTreeSet::from(["svc-a-x1".into(), "svc-a-x2".into()])
    );
    assert!(view.nodes.is_empty());
    let node_reads = f.sim.request_log()[before..]
        .iter()
        .filter(|r| r.path.contains("/nodes"))
        .count();
    assert_eq!(node_reads, 0);
}

#[tokio::test]
async fn view_carries_the_tke_service_config_named_by_the_auto_annotation() {
    let f = fixture().await;
    let config: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cloud.tencent.com/v1alpha1",
        "kind": "TkeServiceConfig",
        "metadata": {"name": "web-auto-ingress-config", "namespace": NS},
        "spec": {"loadBalancer": {"l7Listeners": [{"protocol": "HTTP", "port": 80, "keepaliveEnable": 1}]}}
    }))
    .unwrap();
    tke_service_config_api(f.admin.clone())
        .create(&PostParams::default(), &config)
        .await
        .expect("create TkeServiceConfig");
    f.create::<Ingress>(web_ingress(json!({
        "ingress.cloud.tencent.com/tke-service-config-auto": "true"
    })))
    .await;

    let view = f.cluster.view(NS, "web").await.unwrap().unwrap();
    let config = view.tke_service_config.expect("config present");
    assert_eq!(
        config["spec"]["loadBalancer"]["l7Listeners"][0]["port"],
        json!(80)
    );
    assert_eq!(config["metadata"]["name"], json!("web-auto-ingress-config"));
}

#[tokio::test]
async fn view_of_a_missing_ingress_is_none_after_one_request() {
    let f = fixture().await;
    let before = f.requests();
    assert!(f.cluster.view(NS, "nope").await.unwrap().is_none());
    assert_eq!(f.requests() - before, 1);
}

fn backend_only() -> serde_json::Value {
    json!({"defaultBackend": {"service": {"name": "svc-a", "port": {"number": 80}}}})
}

#[tokio::test]
async fn list_ingresses_pages_through_every_namespace() {
    let f = fixture().await;
    f.create_cluster_scoped::<Namespace>(json!({"metadata": {"name": "other"}}))
        .await;
    for i in 0..4 {
        f.create::<Ingress>(
            json!({"metadata": {"name": format!("a{i}"), "namespace": NS}, "spec": backend_only()}),
        )
        .await;
    }
    for i in 0..3 {
        let ing: Ingress = serde_json::from_value(
            json!({"metadata": {"name": format!("b{i}"), "namespace": "other"}, "spec": backend_only()}),
        )
        .unwrap();
        Api::<Ingress>::namespaced(f.admin.clone(), "other")
            .create(&PostParams::default(), &ing)
            .await
            .unwrap();
    }
    let cluster = f.cluster.clone().with_page_size(2);
    let before = f.requests();
    let all = cluster.list_ingresses().await.unwrap();
    let seen: BTreeSet<_> = all
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i.metadata.namespace.as_deref().unwrap_or(""),
                i.metadata.name.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(seen.len(), 7);
    assert_eq!(all.len(), 7);
    assert_eq!(f.requests() - before, 4, "7 items at 2 per page");
}

fn lb(ip: &str) -> Vec<IngressLoadBalancerIngress> {
    vec![IngressLoadBalancerIngress {
        ip: Some(ip.into()),
        ..Default::default()
    }]
}

#[tokio::test]
async fn status_write_goes_to_the_status_subresource_and_a_stale_version_conflicts() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let read = f.ingress("web").await;

    let written = match f.cluster.write_status(&read, lb("1.2.3.4")).await.unwrap() {
        WriteOutcome::Written(ingress) => ingress,
        WriteOutcome::Unchanged => panic!("status differed, a write was due"),
    };
    let stored = f.ingress("web").await;
    assert_eq!(
        stored.metadata.resource_version,
        written.metadata.resource_version
    );
    let ips: Vec<_> = stored
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect();
    assert_eq!(ips, vec!["1.2.3.4".to_string()]);
    let status_puts = f
        .sim
        .request_log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/ingresses/web/status"))
        .count();
    assert_eq!(status_puts, 1);

    // The first read is stale now: writing from it must not overwrite the newer status.
    let error = f
        .cluster
        .write_status(&read, lb("5.6.7.8"))
        .await
        .expect_err("stale resourceVersion");
    assert!(error.is_conflict(), "{error}");
    assert!(matches!(
        error,
        ClusterError::Conflict {
            kind: "Ingress",
            ..
        }
    ));
}

#[tokio::test]
async fn status_already_as_desired_sends_no_request() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let read = f.ingress("web").await;
    let WriteOutcome::Written(written) =
        f.cluster.write_status(&read, lb("1.2.3.4")).await.unwrap()
    else {
        panic!("first write was due")
    };
    let before = f.requests();
    let again = f
        .cluster
        .write_status(&written, lb("1.2.3.4"))
        .await
        .unwrap();
    assert!(matches!(again, WriteOutcome::Unchanged));
    let empty = f.cluster.write_status(&read, Vec::new()).await.unwrap();
    assert!(
        matches!(empty, WriteOutcome::Unchanged),
        "none equals empty"
    );
    assert_eq!(f.requests(), before);
}

#[tokio::test]
async fn lb_annotation_is_patched_once_then_left_alone_and_removable() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({"keep": "me"})))
        .await;
    let read = f.ingress("web").await;
    let before = f.requests();
    let WriteOutcome::Written(patched) = f
        .cluster
        .set_lb_annotation(&read, Some("lb-abc123"))
        .await
        .unwrap()
    else {
        panic!("annotation was missing")
    };
    let annotations = patched.metadata.annotations.clone().unwrap();
    assert_eq!(annotations[LB_ID_ANNOTATION], "lb-abc123");
    assert_eq!(annotations["keep"], "me");
    assert!(matches!(
        f.cluster
            .set_lb_annotation(&patched, Some("lb-abc123"))
            .await
            .unwrap(),
        WriteOutcome::Unchanged
    ));
    assert_eq!(f.requests() - before, 1);

    f.cluster.set_lb_annotation(&patched, None).await.unwrap();
    let stored = f.ingress("web").await;
    let annotations = stored.metadata.annotations.unwrap();
    assert!(!annotations.contains_key(LB_ID_ANNOTATION));
    assert_eq!(annotations["keep"], "me");
}

#[tokio::test]
async fn repeated_event_is_counted_in_series_across_runs_not_duplicated() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let ingress = f.ingress("web").await;
    let warning = EventRecord {
        type_: EventType::Warning,
        reason: "E4041",
        action: "Reconcile",
        note: "Service shop/svc-missing not found",
    };
    let t0 = Timestamp::now();
    let first = f.cluster.emit_event(&ingress, &warning, t0).await.unwrap();
    let EventOutcome::Created { name } = first.clone() else {
        panic!("first occurrence creates: {first:?}")
    };
    // A second client is a later, separate run: it has no memory of the first.
    let later_run = ClusterClient::from_kubeconfig_yaml(&f.sim.kubeconfig_yaml())
        .await
        .unwrap();
    let t1 = t0 + SignedDuration::from_secs(30);
    assert_eq!(
        f.cluster.emit_event(&ingress, &warning, t1).await.unwrap(),
        EventOutcome::Repeated {
            name: name.clone(),
            count: 2
        }
    );
    assert_eq!(
        later_run.emit_event(&ingress, &warning, t1).await.unwrap(),
        EventOutcome::Repeated {
            name: name.clone(),
            count: 3
        }
    );
    let other = EventRecord {
        note: "Service shop/svc-a not found",
        ..warning.clone()
    };
    assert!(matches!(
        f.cluster.emit_event(&ingress, &other, t1).await.unwrap(),
        EventOutcome::Created { .. }
    ));

    let events = Api::<Event>::namespaced(f.admin.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 2);
    let stored = events
        .iter()
        .find(|e| e.metadata.name.as_deref() == Some(name.as_str()))
        .unwrap();
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(
        stored.reporting_controller.as_deref(),
        Some(identity::REPORTING_CONTROLLER)
    );
    assert_eq!(stored.type_.as_deref(), Some("Warning"));
    assert_eq!(stored.reason.as_deref(), Some("E4041"));
    assert_eq!(
        stored.regarding.as_ref().and_then(|r| r.uid.clone()),
        ingress.metadata.uid
    );
}

#[tokio::test]
async fn long_note_is_truncated_to_1kib_and_accepted() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let ingress = f.ingress("web").await;
    let note = "x".repeat(5000);
    let record = EventRecord {
        type_: EventType::Normal,
        reason: "EnsuredLoadBalancer",
        action: "Reconcile",
        note: &note,
    };
    let EventOutcome::Created { name } = f
        .cluster
        .emit_event(&ingress, &record, Timestamp::now())
        .await
        .unwrap()
    else {
        panic!("new event")
    };
    let stored = Api::<Event>::namespaced(f.admin.clone(), NS)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(stored.note.map(|n| n.len()), Some(1024));
}

async fn read_lease(f: &Fixture, ingress: &str) -> Lease {
    Api::<Lease>::namespaced(f.admin.clone(), NS)
        .get(&lease_name(ingress))
        .await
        .unwrap()
}

fn dirty(lease: &Lease) -> bool {
    lease
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(DIRTY_ANNOTATION).map(String::as_str) == Some("true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquirers_never_hold_the_lease_at_once_and_no_busy_mark_is_lost() {
    const TASKS: usize = 8;
    const ROUNDS: usize = 3;
    let f = fixture().await;
    let holding = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let cluster = ClusterClient::from_kubeconfig_yaml(&f.sim.kubeconfig_yaml())
            .await
            .unwrap();
        let (holding, most_at_once, start) = (holding.clone(), most_at_once.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let (mut acquired, mut busy, mut contended, mut dirty_releases) = (0, 0, 0, 0);
            // Every task insists until it has held the lease ROUNDS times, so all of them
            // contend for the whole test.
            while acquired < ROUNDS {
                let me = cluster.new_holder_identity();
                match cluster
                    .acquire_lease(NS, "web", &me, LEASE_SECONDS, Timestamp::now())
                    .await
                {
                    Ok(Acquire::Acquired { guard, took_over }) => {
                        assert_eq!(took_over, None, "nobody's lease expires in this test");
                        acquired += 1;
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        most_at_once.fetch_max(now, Ordering::SeqCst);
                        // Hold across a few scheduling points so other tasks run meanwhile.
                        for _ in 0..5 {
                            tokio::task::yield_now().await;
                        }
                        cluster
                            .renew_lease(&guard, Timestamp::now())
                            .await
                            .expect("renew while held");
                        holding.fetch_sub(1, Ordering::SeqCst);
                        if cluster.release_lease(guard).await.expect("release").dirty {
                            dirty_releases += 1;
                        }
                    }
                    Ok(Acquire::Busy { holder }) => {
                        assert_ne!(holder, me);
                        busy += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(ClusterError::LeaseContended { .. }) => contended += 1,
                    Err(error) => panic!("acquire: {error}"),
                }
            }
            (acquired, busy, contended, dirty_releases)
        }));
    }
    let (mut acquired, mut busy, mut contended, mut dirty_releases) = (0, 0, 0, 0);
    for task in tasks {
        let (a, b, c, d) = task.await.unwrap();
        acquired += a;
        busy += b;
        contended += c;
        dirty_releases += d;
    }
    assert_eq!(acquired, TASKS * ROUNDS);
    assert_eq!(
        most_at_once.load(Ordering::SeqCst),
        1,
        "two holders at once"
    );
    // Every Busy found (or left) a mark on a held lease, and each release clears and reports
    // the mark it finds: so some release reported one, and no more than there were findings.
    assert!(busy > 0, "the tasks never contended");
    assert!(dirty_releases >= 1);
    assert!(dirty_releases <= busy);
    let log = f.sim.request_log();
    let lease_requests = log.iter().filter(|r| r.path.contains("/leases")).count();
    let conflicts = log
        .iter()
        .filter(|r| r.path.contains("/leases") && r.status == 409)
        .count();
    eprintln!(
        "lease contention: {acquired} holds, {busy} busy, {contended} contended, \
         {dirty_releases} dirty releases, {lease_requests} lease requests, {conflicts} conflicts"
    );
    let lease = read_lease(&f, "web").await;
    assert_eq!(
        lease.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        None,
        "everyone released"
    );
    assert!(!dirty(&lease), "the last release cleared the mark");
}

#[tokio::test]
async fn expired_lease_is_taken_over_and_its_old_holder_learns_it_lost() {
    let f = fixture().await;
    let t0 = Timestamp::now();
    let old = f.cluster.new_holder_identity();
    let Acquire::Acquired {
        guard: old_guard, ..
    } = f
        .cluster
        .acquire_lease(NS, "web", &old, 60, t0)
        .await
        .unwrap()
    else {
        panic!("free lease")
    };
    let before_transitions = read_lease(&f, "web")
        .await
        .spec
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);

    // Still within its duration: another run finds it busy.
    let new = f.cluster.new_holder_identity();
    let t_busy = t0 + SignedDuration::from_secs(30);
    assert_eq!(
        f.cluster
            .acquire_lease(NS, "web", &new, 60, t_busy)
            .await
            .unwrap(),
        Acquire::Busy {
            holder: old.clone()
        }
    );
    // Long after: the old holder died without releasing; take over.
    let t_late = t0 + SignedDuration::from_secs(3600);
    let Acquire::Acquired { guard, took_over } = f
        .cluster
        .acquire_lease(NS, "web", &new, 60, t_late)
        .await
        .unwrap()
    else {
        panic!("expired lease must be taken over")
    };
    assert_eq!(took_over, Some(old.clone()));
    let lease = read_lease(&f, "web").await;
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(new.as_str()));
    assert_eq!(spec.lease_transitions, Some(before_transitions + 1));
    assert!(
        !dirty(&lease),
        "taking over starts a fresh run, the old mark is answered"
    );

    let lost = f
        .cluster
        .release_lease(old_guard.clone())
        .await
        .expect_err("old holder");
    assert!(matches!(lost, ClusterError::LeaseLost { .. }), "{lost}");
    assert!(matches!(
        f.cluster.renew_lease(&old_guard, t_late).await,
        Err(ClusterError::LeaseLost { .. })
    ));
    assert!(!f.cluster.release_lease(guard).await.unwrap().dirty);
}

#[tokio::test]
async fn busy_run_marks_the_lease_dirty_once_and_the_holder_reruns() {
    let f = fixture().await;
    let now = Timestamp::now();
    let holder = f.cluster.new_holder_identity();
    let Acquire::Acquired { guard, .. } = f
        .cluster
        .acquire_lease(NS, "web", &holder, LEASE_SECONDS, now)
        .await
        .unwrap()
    else {
        panic!("free lease")
    };
    for _ in 0..3 {
        let other = f.cluster.new_holder_identity();
        assert!(matches!(
            f.cluster
                .acquire_lease(NS, "web", &other, LEASE_SECONDS, now)
                .await
                .unwrap(),
            Acquire::Busy { .. }
        ));
    }
    assert!(dirty(&read_lease(&f, "web").await));
    let lease_writes = |f: &Fixture| {
        f.sim
            .request_log()
            .iter()
            .filter(|r| r.path.contains("/leases") && r.method != "GET")
            .count()
    };
    // One create, one dirty mark; the later busy runs saw the mark and wrote nothing.
    assert_eq!(lease_writes(&f), 2);

    let released = f.cluster.release_lease(guard).await.unwrap();
    assert!(released.dirty, "the holder must learn it has to run again");
    let lease = read_lease(&f, "web").await;
    assert!(!dirty(&lease));
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None);

    // The rerun: acquire again, nothing marked meanwhile, released clean.
    let Acquire::Acquired { guard, .. } = f
        .cluster
        .acquire_lease(NS, "web", &holder, LEASE_SECONDS, now)
        .await
        .unwrap()
    else {
        panic!("released lease is free")
    };
    assert!(!f.cluster.release_lease(guard).await.unwrap().dirty);
}

#[tokio::test]
async fn a_failed_read_fails_the_view_rather_than_looking_absent() {
    let f = fixture().await;
    f.create::<Service>(nodeport_service("svc-a")).await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    for (path, code) in [
        (format!("/api/v1/namespaces/{NS}/services/svc-a"), 500),
        (format!("/api/v1/namespaces/{NS}/secrets/cert-a"), 403),
        ("/api/v1/nodes".to_string(), 503),
    ] {
        f.sim.fail_next("GET", &path, 1, code);
        let error = f
            .cluster
            .view(NS, "web")
            .await
            .expect_err("an unanswered read is not an absent object");
        assert!(matches!(error, ClusterError::Api { .. }), "{path}: {error}");
    }
    // The faults are used up: the same view now succeeds, with the missing objects absent.
    let view = f.cluster.view(NS, "web").await.unwrap().unwrap();
    assert_eq!(names(view.services.keys()), vec!["svc-a"]);
    assert!(view.secrets.is_empty());
}

#[tokio::test]
async fn an_unserved_tke_service_config_api_reads_as_absent() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({
        "ingress.cloud.tencent.com/tke-service-config": "cfg"
    })))
    .await;
    // A cluster without TKE's CRD answers 404 for the whole resource path.
    f.sim.fail_next(
        "GET",
        &format!("/apis/cloud.tencent.com/v1alpha1/namespaces/{NS}/tkeserviceconfigs/*"),
        1,
        404,
    );
    let view = f.cluster.view(NS, "web").await.unwrap().unwrap();
    assert!(view.tke_service_config.is_none());
    let asked = f
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path.contains("/tkeserviceconfigs/cfg"))
        .count();
    assert_eq!(asked, 1);
}

#[tokio::test]
async fn client_built_from_a_kubeconfig_file_reads_the_cluster() {
    let f = fixture().await;
    f.create::<Ingress>(web_ingress(json!({}))).await;
    let path = std::env::temp_dir().join(format!(
        "clb-ingress-kubeconfig-{:016x}.yaml",
        rand::random::<u64>()
    ));
    std::fs::write(&path, f.sim.kubeconfig_yaml()).unwrap();
    let from_file = ClusterClient::from_source(ConfigSource::File(path.clone())).await;
    std::fs::remove_file(&path).unwrap();
    let view = from_file.unwrap().view(NS, "web").await.unwrap();
    assert!(view.is_some());
    let missing = ClusterClient::from_source(ConfigSource::File(path)).await;
    assert!(matches!(missing, Err(ClusterError::Config(_))));
}
