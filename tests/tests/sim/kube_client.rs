//! Contract tests of kube-sim through kube-rs over real HTTP: every behaviour the reconciler
//! relies on, checked the way a client sees it.

use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{json, Value};

async fn sim() -> (KubeSimHandle, kube::Client) {
    let sim = kube_sim::spawn(KubeSimConfig::default()).await.unwrap();
    let client = sim.client().await;
    (sim, client)
}

fn ingress(name: &str, host: &str) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}
        }]}}]}
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv(ing: &Ingress) -> u64 {
    ing.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn create_fills_server_metadata_and_get_returns_the_stored_object() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let m = &created.metadata;
    assert_eq!(m.uid.as_deref().map(str::len), Some(36));
    assert!(m.creation_timestamp.is_some());
    assert_eq!(m.generation, Some(1));
    assert_eq!(m.namespace.as_deref(), Some("default"));
    let got = api.get("web").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(got.spec, created.spec);
}

#[tokio::test]
async fn missing_object_is_404_not_found_and_get_opt_is_none() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    assert!(api.get_opt("nope").await.unwrap().is_none());
    let s = api_err(api.get("nope").await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "ingresses.networking.k8s.io \"nope\" not found");
}

#[tokio::test]
async fn creating_an_existing_name_is_409_already_exists() {
    let (_sim, client) = sim().await;
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}))
            .unwrap();
    api.create(&PostParams::default(), &lease).await.unwrap();
    let e = api
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    let s = api_err(e);
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn stale_resource_version_is_409_conflict_for_put_and_patch() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let mut second = first.clone();
    second.metadata.labels = Some([("v".to_string(), "2".to_string())].into());
    let updated = api
        .replace("web", &PostParams::default(), &second)
        .await
        .unwrap();
    assert!(rv(&updated) > rv(&first));
    // PUT carrying the old resourceVersion
    let e = api_err(
        api.replace("web", &PostParams::default(), &first)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("the object has been modified"),
        "{}",
        e.message
    );
    // merge patch carrying the old resourceVersion
    let stale = json!({"metadata": {"resourceVersion": first.metadata.resource_version, "labels": {"x": "y"}}});
    let e = api_err(
        api.patch("web", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "Conflict");
    // the same patch with the current resourceVersion goes through
    let fresh = json!({"metadata": {"resourceVersion": updated.metadata.resource_version, "labels": {"x": "y"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&fresh))
        .await
        .unwrap();
    assert_eq!(
        api.get("web").await.unwrap().metadata.labels.unwrap()["x"],
        "y"
    );
}

#[tokio::test]
async fn put_without_resource_version_is_refused_for_leases_but_allowed_for_ingresses() {
    let (_sim, client) = sim().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}))
            .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let e = api_err(
        leases
            .replace("l", &PostParams::default(), &lease)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let ings: Api<Ingress> = Api::namespaced(client, "default");
    ings.create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    ings.replace(
        "web",
        &PostParams::default(),
        &ingress("web", "b.example.com"),
    )
    .await
    .unwrap();
    let got = ings.get("web").await.unwrap();
    assert_eq!(
        got.spec.unwrap().rules.unwrap()[0].host.as_deref(),
        Some("b.example.com")
    );
}

#[tokio::test]
async fn generation_moves_with_spec_changes_only_and_resource_version_with_every_write() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let a = api
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let b = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"k": "v"}}})),
        )
        .await
        .unwrap();
    assert_eq!(b.metadata.generation, Some(1));
    assert!(rv(&b) > rv(&a));
    let c = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ingressClassName": "qcloud"}})),
        )
        .await
        .unwrap();
    assert_eq!(c.metadata.generation, Some(2));
    assert!(rv(&c) > rv(&b));
    // a patch that changes nothing writes nothing
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ingressClassName": "qcloud"}})),
        )
        .await
        .unwrap();
    assert_eq!(rv(&d), rv(&c));
}

#[tokio::test]
async fn status_writes_change_only_status_and_object_writes_leave_status_alone() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let mut with_status = ingress("web", "a.example.com");
    with_status.status =
        serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}})).unwrap();
    let created = api
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&created.status).unwrap(),
        json!({"loadBalancer": {}}),
        "create resets status"
    );
    let status_patch = json!({
        "metadata": {"labels": {"ignored": "yes"}},
        "spec": {"ingressClassName": "ignored"},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    });
    let after = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .unwrap();
    assert_eq!(
        after
            .status
            .as_ref()
            .unwrap()
            .load_balancer
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()[0]
            .ip
            .as_deref(),
        Some("10.0.0.1")
    );
    assert!(after.spec.as_ref().unwrap().ingress_class_name.is_none());
    assert!(!after
        .metadata
        .labels
        .as_ref()
        .unwrap()
        .contains_key("ignored"));
    assert_eq!(after.metadata.generation, Some(1));
    // a write to the object with a different status keeps the stored status
    let main = json!({"spec": {"ingressClassName": "qcloud"}, "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}});
    let after2 = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    assert_eq!(
        after2.spec.unwrap().ingress_class_name.as_deref(),
        Some("qcloud")
    );
    assert_eq!(
        after2
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()[0]
            .ip
            .as_deref(),
        Some("10.0.0.1")
    );
}

#[tokio::test]
async fn json_patch_applies_and_a_failed_test_op_is_422() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/app", "value": "web"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/cleanup"]}
    ]))
    .unwrap();
    let got = api
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(ok))
        .await
        .unwrap();
    assert_eq!(
        got.metadata.finalizers,
        Some(vec!["x.io/cleanup".to_string()])
    );
    let bad: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/app", "value": "other"},
        {"op": "remove", "path": "/metadata/finalizers"}
    ]))
    .unwrap();
    let e = api_err(
        api.patch("web", &PatchParams::default(), &Patch::Json::<()>(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        api.get("web").await.unwrap().metadata.finalizers,
        Some(vec!["x.io/cleanup".to_string()]),
        "a failed patch changes nothing"
    );
}

#[tokio::test]
async fn strategic_merge_patch_merges_service_ports_by_port() {
    let (_sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443}
        ]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.as_ref().unwrap();
    assert!(spec.cluster_ip.is_some(), "cluster IP allocated");
    let node_port_80 = spec.ports.as_ref().unwrap()[0].node_port;
    assert!(node_port_80.is_some_and(|p| (30000..=32767).contains(&p)));
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let got = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let ports = got.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 2, "merged by port, not replaced");
    assert_eq!(
        serde_json::to_value(&ports[0].target_port).unwrap(),
        json!(9090)
    );
    assert_eq!(ports[0].node_port, node_port_80, "allocated node port kept");
    assert_eq!(ports[1].name.as_deref(), Some("https"));
}

#[tokio::test]
async fn strategic_merge_patch_replaces_ingress_rules_whole() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let mut two = ingress("web", "a.example.com");
    let mut rules = two.spec.as_ref().unwrap().rules.clone().unwrap();
    rules.push(ingress("x", "b.example.com").spec.unwrap().rules.unwrap()[0].clone());
    two.spec.as_mut().unwrap().rules = Some(rules);
    api.create(&PostParams::default(), &two).await.unwrap();
    let patch = json!({"spec": {"rules": [{"host": "c.example.com", "http": {"paths": [{"path": "/", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    let got = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let hosts: Vec<_> = got
        .spec
        .unwrap()
        .rules
        .unwrap()
        .into_iter()
        .map(|r| r.host.unwrap())
        .collect();
    assert_eq!(hosts, vec!["c.example.com"]);
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_and_requires_a_field_manager() {
    let (sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let desired = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "annotations": {"a": "1"}},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    });
    let created = api
        .patch(
            "web",
            &PatchParams::apply("test-mgr"),
            &Patch::Apply(&desired),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let again = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "annotations": {"b": "2"}}});
    let merged = api
        .patch(
            "web",
            &PatchParams::apply("test-mgr").force(),
            &Patch::Apply(&again),
        )
        .await
        .unwrap();
    let ann = merged.metadata.annotations.unwrap();
    assert_eq!(
        (
            ann.get("a").map(String::as_str),
            ann.get("b").map(String::as_str)
        ),
        (Some("1"), Some("2"))
    );
    // without fieldManager: 400 (raw request, kube-rs always sends one)
    let resp = reqwest_client()
        .patch(format!(
            "{}/apis/networking.k8s.io/v1/namespaces/default/ingresses/web",
            sim.url()
        ))
        .bearer_auth(sim.admin_token())
        .header("content-type", "application/apply-patch+yaml")
        .body("metadata:\n  name: web\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "BadRequest");
}

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[tokio::test]
async fn unknown_patch_content_type_is_415_and_unknown_token_is_401() {
    let (sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let url = format!(
        "{}/apis/networking.k8s.io/v1/namespaces/default/ingresses/web",
        sim.url()
    );
    let resp = reqwest_client()
        .patch(&url)
        .bearer_auth(sim.admin_token())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("UnsupportedMediaType"))
    );
    let resp = reqwest_client()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn invalid_objects_are_422_with_causes() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let mut bad = ingress("Bad_Name", "a.example.com");
    let e = api_err(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let causes = e.details.unwrap().causes;
    assert!(
        causes.iter().any(|c| c.field == "metadata.name"),
        "{causes:?}"
    );
    bad.metadata.name = Some("ok".into());
    bad.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths[0]
        .path_type = String::new();
    let raw = serde_json::to_value(&bad).unwrap();
    let mut raw = raw;
    raw["spec"]["rules"][0]["http"]["paths"][0]
        .as_object_mut()
        .unwrap()
        .remove("pathType");
    let dyn_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("networking.k8s.io", "v1", "Ingress")),
    );
    let obj: DynamicObject = serde_json::from_value(raw).unwrap();
    let e = api_err(
        dyn_api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "Invalid");
    assert!(
        e.message
            .contains("spec.rules[0].http.paths[0].pathType: Required value"),
        "{}",
        e.message
    );
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    assert_eq!(
        api_err(svcs.create(&PostParams::default(), &svc).await.unwrap_err()).code,
        422
    );
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_404_and_body_namespace_mismatch_is_400() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client.clone(), "nowhere");
    let e = api_err(
        api.create(&PostParams::default(), &ingress("web", "a.example.com"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert!(
        e.message.starts_with("namespaces \"nowhere\""),
        "{}",
        e.message
    );
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let mut other = ingress("web", "a.example.com");
    other.metadata.namespace = Some("kube-system".into());
    let e = api_err(
        api.create(&PostParams::default(), &other)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists_and_unsupported_fields_are_400() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "api"})),
        ("c", json!({"app": "db", "legacy": "true"})),
    ] {
        let mut ing = ingress(name, "x.example.com");
        ing.metadata.labels = serde_json::from_value(labels).unwrap();
        api.create(&PostParams::default(), &ing).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Ingress>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|i| i.metadata.name.unwrap())
            .collect()
    };
    for (sel, want) in [
        ("app=web", vec!["a"]),
        ("app==api", vec!["b"]),
        ("app!=web", vec!["b", "c"]),
        ("app in (web,db)", vec!["a", "c"]),
        ("app notin (web,db)", vec!["b"]),
        ("tier", vec!["a"]),
        ("!legacy", vec!["a", "b"]),
        ("app,!tier,app!=db", vec!["b"]),
    ] {
        let got = names(api.list(&ListParams::default().labels(sel)).await.unwrap());
        assert_eq!(got, want, "selector {sel}");
    }
    let got = names(
        api.list(&ListParams::default().fields("metadata.name=b"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["b"]);
    let got = names(
        api.list(&ListParams::default().fields("metadata.namespace=default,metadata.name!=b"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["a", "c"]);
    let e = api_err(
        api.list(&ListParams::default().fields("spec.foo=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = api_err(
        api.list(&ListParams::default().labels("app in web"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn lists_span_all_namespaces_page_with_continue_and_carry_a_resource_version() {
    let (_sim, client) = sim().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    Api::<Ingress>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &ingress("a", "a.example.com"))
        .await
        .unwrap();
    Api::<Ingress>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &ingress("b", "b.example.com"))
        .await
        .unwrap();
    Api::<Ingress>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &ingress("c", "c.example.com"))
        .await
        .unwrap();
    let all: Api<Ingress> = Api::all(client);
    let list = all.list(&ListParams::default()).await.unwrap();
    let keys: Vec<_> = list
        .items
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i.metadata.namespace.clone().unwrap(),
                i.metadata.name.clone().unwrap()
            )
        })
        .collect();
    assert_eq!(keys, vec!["default/a", "shop/b", "shop/c"]);
    assert!(list.metadata.resource_version.is_some());
    let page1 = all.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().unwrap();
    let page2 = all
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(page2.items.len(), 1);
    assert_eq!(page2.items[0].metadata.name.as_deref(), Some("c"));
    assert!(page2.metadata.continue_.as_deref().unwrap_or("").is_empty());
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_the_last_one_is_removed() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let mut ing = ingress("web", "a.example.com");
    ing.metadata.finalizers = Some(vec!["x.io/cleanup".into()]);
    api.create(&PostParams::default(), &ing).await.unwrap();
    let deleted = api.delete("web", &DeleteParams::default()).await.unwrap();
    let held = deleted
        .left()
        .expect("the object is returned while finalizers hold it");
    assert!(held.metadata.deletion_timestamp.is_some());
    let still = api.get("web").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    let e = api_err(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["x.io/cleanup", "y.io/new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.reason, "Invalid",
        "no new finalizers on a deleting object"
    );
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_without_finalizers_removes_at_once_and_honours_preconditions() {
    let (_sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let mut dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("00000000-0000-4000-8000-000000000000".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let e = api_err(api.delete("web", &dp).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    dp.preconditions = Some(kube::api::Preconditions {
        uid: created.metadata.uid.clone(),
        resource_version: None,
    });
    let status = api
        .delete("web", &dp)
        .await
        .unwrap()
        .right()
        .expect("a Status for a built-in type");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    assert!(api.get_opt("web").await.unwrap().is_none());
    let e = api_err(
        api.delete("web", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn generate_name_makes_a_unique_name_with_a_five_character_suffix() {
    let (_sim, client) = sim().await;
    let api: Api<EndpointSlice> = Api::namespaced(client, "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"generateName": "web-", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .unwrap();
    let a = api.create(&PostParams::default(), &slice).await.unwrap();
    let b = api.create(&PostParams::default(), &slice).await.unwrap();
    let (na, nb) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert_ne!(na, nb);
    assert!(
        na.starts_with("web-") && na.len() == "web-".len() + 5,
        "{na}"
    );
    let found = api
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 2);
}

#[tokio::test]
async fn events_v1_are_validated_and_share_storage_with_core_events() {
    let (_sim, client) = sim().await;
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": "web.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "clb-ingress",
        "reportingInstance": "clb-ingress-1",
        "action": "Reconcile",
        "reason": "Synced",
        "type": "Normal",
        "note": "ok",
        "regarding": {"kind": "Ingress", "name": "web", "namespace": "default"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &ev).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let seen = core.get("web.1").await.unwrap();
    assert_eq!(seen.message.as_deref(), Some("ok"));
    assert_eq!(seen.involved_object.name.as_deref(), Some("web"));
    assert_eq!(seen.reporting_component.as_deref(), Some("clb-ingress"));
    let by_field = core
        .list(&ListParams::default().fields("involvedObject.kind=Ingress"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);
    let bad: Event = serde_json::from_value(json!({"metadata": {"name": "web.2"}, "eventTime": "2026-01-01T00:00:00.000000Z", "type": "Odd"})).unwrap();
    let e = api_err(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(e.code, 422);
    let fields: Vec<String> = e
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    for f in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "type",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
}

#[tokio::test]
async fn cluster_scoped_types_live_outside_namespaces() {
    let (_sim, client) = sim().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "10.0.0.1", "labels": {"cloud.tencent.com/node-instance-id": "ins-1"}},
        "spec": {"providerID": "qcloud:///100003/ins-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let n = nodes.create(&PostParams::default(), &node).await.unwrap();
    assert!(n.metadata.namespace.is_none());
    assert_eq!(n.status.unwrap().conditions.unwrap()[0].status, "True");
    let classes: Api<IngressClass> = Api::all(client);
    let ic: IngressClass = serde_json::from_value(
        json!({"metadata": {"name": "qcloud"}, "spec": {"controller": "cloud.tencent.com/clb"}}),
    )
    .unwrap();
    classes.create(&PostParams::default(), &ic).await.unwrap();
    let changed: IngressClass = serde_json::from_value(
        json!({"metadata": {"name": "qcloud"}, "spec": {"controller": "other.io/x"}}),
    )
    .unwrap();
    let e = api_err(
        classes
            .replace("qcloud", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "Invalid", "spec.controller is immutable");
}

#[tokio::test]
async fn tke_service_config_is_served_as_a_custom_resource() {
    let (_sim, client) = sim().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cloud.tencent.com", "v1alpha1", "TkeServiceConfig"),
        "tkeserviceconfigs",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cloud.tencent.com/v1alpha1", "kind": "TkeServiceConfig",
        "metadata": {"name": "cfg"},
        "spec": {"loadBalancer": {"l7Listeners": [{"protocol": "HTTP", "port": 80}]}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = api_err(
        api.patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 415, "no strategic merge patch for custom resources");
    let merged = api
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"extra": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data["spec"]["extra"], 1);
    assert_eq!(merged.metadata.generation, Some(2));
}

#[tokio::test]
async fn secrets_store_string_data_as_base64_data() {
    let (_sim, client) = sim().await;
    let api: Api<Secret> = Api::namespaced(client, "default");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "cert"}, "stringData": {"qcloud_cert_id": "abc"}}),
    )
    .unwrap();
    let created = api.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(created.data.unwrap()["qcloud_cert_id"].0, b"abc".to_vec());
}

#[tokio::test]
async fn injected_faults_fail_the_next_matching_requests_with_a_status_body() {
    let (sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web";
    sim.fail_next("GET", path, 2, 500);
    for _ in 0..2 {
        let e = api_err(api.get("web").await.unwrap_err());
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    }
    api.get("web").await.unwrap();
    // kube 5 retries 429 by default (honouring Retry-After): the caller sees success, the
    // log shows the throttled attempt first.
    sim.fail_next("PATCH", path, 1, 429);
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .unwrap();
    let patches = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(patches, vec![429, 200]);
    let gets = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(gets, vec![500, 500, 200]);
}

#[tokio::test]
async fn dry_run_writes_answer_but_change_nothing() {
    let (sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let before = sim.resource_version();
    api.create(
        &PostParams {
            dry_run: true,
            field_manager: None,
        },
        &ingress("web", "a.example.com"),
    )
    .await
    .unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());
    assert_eq!(sim.resource_version(), before);
}

#[tokio::test]
async fn test_hooks_read_and_write_raw_objects_like_a_concurrent_writer() {
    let (sim, client) = sim().await;
    let api: Api<Ingress> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let mut raw = sim
        .get_object("networking.k8s.io/v1", "Ingress", Some("default"), "web")
        .unwrap();
    raw["metadata"]["labels"]["touched"] = json!("yes");
    sim.put_object(raw).unwrap();
    let e = api_err(
        api.replace("web", &PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.reason, "Conflict",
        "our read is stale after the concurrent write"
    );
    assert_eq!(
        sim.list_objects("networking.k8s.io/v1", "Ingress", None)
            .len(),
        1
    );
    assert!(sim.delete_object("networking.k8s.io/v1", "Ingress", Some("default"), "web"));
    assert!(api.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn table_is_served_when_asked_for_and_plain_json_otherwise() {
    let (sim, client) = sim().await;
    Api::<Ingress>::namespaced(client, "default")
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let url = format!(
        "{}/apis/networking.k8s.io/v1/namespaces/default/ingresses",
        sim.url()
    );
    let table: Value = reqwest_client()
        .get(&url)
        .bearer_auth(sim.admin_token())
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec!["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    assert_eq!(table["rows"][0]["cells"][0], "web");
    assert_eq!(table["rows"][0]["cells"][2], "a.example.com");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let list: Value = reqwest_client()
        .get(&url)
        .bearer_auth(sim.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["kind"], "IngressList");
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no TypeMeta"
    );
}

#[tokio::test]
async fn discovery_documents_list_the_served_resources() {
    let (sim, _client) = sim().await;
    let get = |p: &'static str| {
        let url = format!("{}{p}", sim.url());
        let token = sim.admin_token();
        async move {
            reqwest_client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("/version").await["major"], "1");
    assert_eq!(get("/api").await["versions"], json!(["v1"]));
    let groups = get("/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "networking.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "coordination.k8s.io",
        "cloud.tencent.com",
    ] {
        assert!(names.contains(&g), "{g}");
    }
    let net = get("/apis/networking.k8s.io/v1").await;
    let res: Vec<&str> = net["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(res, vec!["ingresses", "ingresses/status", "ingressclasses"]);
}

#[tokio::test]
async fn kube_runtime_recorder_creates_then_patches_an_event_series() {
    use kube::runtime::events::{Event as RtEvent, EventType, Recorder, Reporter};
    use kube::Resource;
    let (sim, client) = sim().await;
    let ing = Api::<Ingress>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &ingress("web", "a.example.com"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "clb-ingress".into(),
            instance: Some("clb-ingress-1".into()),
        },
    );
    let ev = RtEvent {
        type_: EventType::Warning,
        reason: "ExistLbRefused".into(),
        note: Some("lb-123 belongs to another cluster".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &ing.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &ing.object_ref(&())).await.unwrap();
    let events: Api<Event> = Api::namespaced(client, "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("ExistLbRefused"));
    assert_eq!(e.regarding.as_ref().unwrap().name.as_deref(), Some("web"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    let writes: Vec<String> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.path.starts_with("/apis/events.k8s.io/"))
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(writes, ["POST 201", "PATCH 200", "GET 200"]);
}

#[tokio::test]
async fn kube_discovery_finds_every_served_kind() {
    let (_sim, client) = sim().await;
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(ar, _)| format!("{}/{}", ar.api_version, ar.kind))
        .collect();
    kinds.sort();
    for k in [
        "v1/Service",
        "v1/Node",
        "networking.k8s.io/v1/Ingress",
        "networking.k8s.io/v1/IngressClass",
        "discovery.k8s.io/v1/EndpointSlice",
        "coordination.k8s.io/v1/Lease",
        "events.k8s.io/v1/Event",
        "cloud.tencent.com/v1alpha1/TkeServiceConfig",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} not in {kinds:?}");
    }
}

#[tokio::test]
async fn unknown_fields_are_dropped_with_a_warning_or_refused_under_strict_validation() {
    let (sim, client) = sim().await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Service"));
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let body = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labelz": {"a": "b"}},
        "spec": {"ports": [{"port": 80}]},
        "spex": {"typo": true}
    });
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(body.clone()).unwrap(),
        )
        .await
        .unwrap();
    assert!(created.data.get("spex").is_none(), "pruned");
    let url = format!(
        "{}/api/v1/namespaces/default/services?fieldValidation=Strict",
        sim.url()
    );
    let mut again = body;
    again["metadata"]["name"] = json!("web2");
    let resp = reqwest_client()
        .post(url)
        .bearer_auth(sim.admin_token())
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "BadRequest");
    let msg = status["message"].as_str().unwrap();
    assert!(
        msg.contains("unknown field \"spex\"") && msg.contains("unknown field \"metadata.labelz\""),
        "{msg}"
    );
    assert!(api.get_opt("web2").await.unwrap().is_none());
}

#[tokio::test]
async fn leaving_node_port_type_releases_carried_node_ports_and_explicit_ones_are_refused() {
    let (_sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &svc).await.unwrap();
    let np = created.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    let to_cluster_ip = json!({"spec": {"type": "ClusterIP"}});
    let got = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(&to_cluster_ip),
        )
        .await
        .unwrap();
    let spec = got.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(
        spec.ports.unwrap()[0].node_port,
        None,
        "node port {np} released"
    );
    let explicit = json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}});
    let e = api_err(
        api.patch("web", &PatchParams::default(), &Patch::Strategic(&explicit))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "Invalid");
    assert!(
        e.message
            .contains("may not be used when `type` is 'ClusterIP'"),
        "{}",
        e.message
    );
}
