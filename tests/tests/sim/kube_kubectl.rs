//! Contract tests of kube-sim through the real `kubectl` binary (`$KUBECTL`, else
//! `/usr/bin/kubectl`): apply (create, then strategic merge with the last-applied
//! annotation), get as JSON and as a table, annotate, label, delete, and a stale replace.

use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use clb_ingress_tests::kubectl::Kubectl;
use serde_json::Value;

const APP_V1: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    kubernetes.io/ingress.class: qcloud
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: metrics
    port: 9100
"#;

async fn sim() -> (KubeSimHandle, Kubectl) {
    let sim = kube_sim::spawn(KubeSimConfig::default()).await.unwrap();
    let k = Kubectl::new(&sim);
    (sim, k)
}

fn obj(sim: &KubeSimHandle, av: &str, kind: &str, name: &str) -> Value {
    sim.get_object(av, kind, Some("default"), name)
        .unwrap_or_else(|| panic!("{kind} {name} missing"))
}

#[tokio::test]
async fn kubectl_apply_creates_then_sends_strategic_merge_patches_with_last_applied() {
    let (sim, k) = sim().await;
    let file = k.write("app.yaml", APP_V1);
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/web created"),
        "{out}"
    );
    assert!(out.contains("service/web created"), "{out}");
    let svc = obj(&sim, "v1", "Service", "web");
    let node_port = svc["spec"]["ports"][0]["nodePort"].clone();
    assert!(node_port.is_u64());
    assert!(
        svc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // change the ingress host, the http target port, and drop the metrics port
    let v2 = APP_V1
        .replace("a.example.com", "b.example.com")
        .replace("targetPort: 8080", "targetPort: 9090")
        .replace("  - name: metrics\n    port: 9100\n", "");
    let file = k.write("app.yaml", &v2);
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/web configured"),
        "{out}"
    );
    assert!(out.contains("service/web configured"), "{out}");

    let patches: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    for p in &patches {
        assert_eq!(p.status, 200);
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        assert!(p.user_agent.as_deref().unwrap_or("").starts_with("kubectl"));
    }
    let ing = obj(&sim, "networking.k8s.io/v1", "Ingress", "web");
    assert_eq!(ing["spec"]["rules"][0]["host"], "b.example.com");
    assert_eq!(ing["metadata"]["generation"], 2);
    let last = ing["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    assert!(last.contains("b.example.com"));
    let svc = obj(&sim, "v1", "Service", "web");
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert_eq!(
        ports.len(),
        1,
        "the removed port is deleted by its merge key"
    );
    assert_eq!(ports[0]["targetPort"], 9090);
    assert_eq!(
        ports[0]["nodePort"], node_port,
        "allocated nodePort survives"
    );

    // applying the same file again is a no-op: no write bumps the resourceVersion
    let rv = sim.resource_version();
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(sim.resource_version(), rv);
}

#[tokio::test]
async fn kubectl_get_prints_tables_and_json() {
    let (_sim, k) = sim().await;
    let file = k.write("app.yaml", APP_V1);
    k.ok(&["apply", "-f", &file]).await;
    let table = k.ok(&["get", "ingress"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["web", "<none>", "a.example.com"]);
    let svc = k.ok(&["get", "svc", "web"]).await;
    let header: Vec<&str> = svc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(svc.lines().nth(1).unwrap().contains("NodePort"));
    let ns = k.ok(&["get", "namespaces"]).await;
    assert!(ns.contains("default") && ns.contains("kube-system"), "{ns}");
    let json: Value =
        serde_json::from_str(&k.ok(&["get", "ingress", "web", "-o", "json"]).await).unwrap();
    assert_eq!(json["kind"], "Ingress");
    assert_eq!(json["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(json["metadata"]["uid"].as_str().unwrap().len(), 36);
    let list: Value =
        serde_json::from_str(&k.ok(&["get", "ingress", "-A", "-o", "json"]).await).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["items"][0]["kind"], "Ingress",
        "kubectl restores item kinds"
    );
}

#[tokio::test]
async fn kubectl_annotate_label_and_delete_change_the_stored_object() {
    let (sim, k) = sim().await;
    let file = k.write("app.yaml", APP_V1);
    k.ok(&["apply", "-f", &file]).await;
    k.ok(&[
        "annotate",
        "ingress",
        "web",
        "kubernetes.io/ingress.existLbId=lb-123",
    ])
    .await;
    k.ok(&["label", "ingress", "web", "team=edge"]).await;
    let ing = obj(&sim, "networking.k8s.io/v1", "Ingress", "web");
    assert_eq!(
        ing["metadata"]["annotations"]["kubernetes.io/ingress.existLbId"],
        "lb-123"
    );
    assert_eq!(ing["metadata"]["labels"]["team"], "edge");
    assert_eq!(
        ing["metadata"]["generation"], 1,
        "metadata edits keep generation"
    );
    let names = k
        .ok(&["get", "ingress", "-l", "team=edge", "-o", "name"])
        .await;
    assert_eq!(names.trim(), "ingress.networking.k8s.io/web");
    let none = k
        .ok(&["get", "ingress", "-l", "team!=edge", "-o", "name"])
        .await;
    assert_eq!(none.trim(), "");
    let out = k.ok(&["delete", "ingress", "web"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(sim
        .get_object("networking.k8s.io/v1", "Ingress", Some("default"), "web")
        .is_none());
    let again = k.run(&["delete", "ingress", "web"]).await;
    assert!(!again.ok);
    assert!(again.stderr.contains("NotFound"), "{}", again.stderr);
}

#[tokio::test]
async fn kubectl_replace_with_a_stale_resource_version_is_refused_with_conflict() {
    let (sim, k) = sim().await;
    let file = k.write("app.yaml", APP_V1);
    k.ok(&["apply", "-f", &file]).await;
    let old = k.ok(&["get", "ingress", "web", "-o", "yaml"]).await;
    let old_file = k.write("old.yaml", &old);
    k.ok(&["annotate", "ingress", "web", "touched=yes"]).await;
    let out = k.run(&["replace", "-f", &old_file]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("Conflict"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the object has been modified"),
        "{}",
        out.stderr
    );
    let ing = obj(&sim, "networking.k8s.io/v1", "Ingress", "web");
    assert_eq!(
        ing["metadata"]["annotations"]["touched"], "yes",
        "the refused write changed nothing"
    );
}

#[tokio::test]
async fn kubectl_reports_invalid_objects_and_applies_custom_resources_with_merge_patches() {
    let (sim, k) = sim().await;
    let bad = k.write(
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: Bad_Name\nspec:\n  ports:\n  - port: 80\n",
    );
    let out = k.run(&["apply", "-f", &bad]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("is invalid"), "{}", out.stderr);
    let typo = k.write(
        "typo.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspex:\n  ports:\n  - port: 80\n",
    );
    let out = k.run(&["apply", "-f", &typo]).await;
    assert!(!out.ok, "kubectl asks for strict field validation");
    assert!(
        out.stderr.contains("unknown field \"spex\""),
        "{}",
        out.stderr
    );
    let cr = "apiVersion: cloud.tencent.com/v1alpha1\nkind: TkeServiceConfig\nmetadata:\n  name: cfg\nspec:\n  loadBalancer:\n    l7Listeners:\n    - protocol: HTTP\n      port: 80\n";
    let file = k.write("cr.yaml", cr);
    k.ok(&["apply", "-f", &file]).await;
    let file = k.write("cr.yaml", &cr.replace("port: 80", "port: 8080"));
    k.ok(&["apply", "-f", &file]).await;
    let patch = sim
        .request_log()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    let got = obj(
        &sim,
        "cloud.tencent.com/v1alpha1",
        "TkeServiceConfig",
        "cfg",
    );
    assert_eq!(got["spec"]["loadBalancer"]["l7Listeners"][0]["port"], 8080);
    let table = k.ok(&["get", "tkeserviceconfigs"]).await;
    assert!(table.starts_with("NAME"), "{table}");
}

#[tokio::test]
async fn kube_sim_binary_prints_its_address_and_serves_kubectl() {
    use tokio::io::AsyncBufReadExt;
    let dir = std::env::temp_dir().join(format!("kube-sim-bin-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kc)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("kube-sim listening on ").unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{line}"
    );
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into());
    let out = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(names.contains("namespace/default"), "{names}");
    assert!(names.contains("namespace/kube-system"), "{names}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn kubectl_create_namespace_and_secret_are_decoded_from_protobuf_or_json() {
    let (sim, k) = sim().await;
    k.ok(&["create", "namespace", "shop"]).await;
    k.ok(&[
        "-n",
        "shop",
        "create",
        "secret",
        "generic",
        "cert",
        "--from-literal=qcloud_cert_id=abc123",
    ])
    .await;
    let creates: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    // kubectl 1.2x+ sends these two kinds as protobuf, Debian's kubectl 1.20 as JSON: both
    // must be decoded and created.
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert!(
        creates.iter().all(|r| {
            let ct = r.content_type.as_deref().unwrap_or("application/json");
            r.status == 201
                && (ct.starts_with("application/vnd.kubernetes.protobuf")
                    || ct.starts_with("application/json"))
        }),
        "{creates:?}"
    );
    let ns = sim.get_object("v1", "Namespace", None, "shop").unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    let secret = sim
        .get_object("v1", "Secret", Some("shop"), "cert")
        .unwrap();
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["qcloud_cert_id"], "YWJjMTIz");
    let sent_protobuf = creates.iter().any(|r| {
        r.content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/vnd.kubernetes.protobuf"))
    });
    let out = k
        .run(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .await;
    if sent_protobuf {
        assert!(!out.ok, "protobuf of other kinds is refused");
        assert!(out.stderr.contains("unknown format"), "{}", out.stderr);
    } else {
        assert!(
            out.ok,
            "a kubectl that sends JSON creates any kind: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn pods_need_containers_and_their_status_conditions_change_only_through_pods_status() {
    let (sim, k) = sim().await;
    let bare = k.write(
        "bare.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\nspec:\n  containers: []\n",
    );
    let out = k.run(&["apply", "-f", &bare]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("spec.containers"), "{}", out.stderr);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    image: nginx\n  readinessGates:\n  - conditionType: example.com/gate\n";
    let file = k.write("pod.yaml", pod);
    k.ok(&["apply", "-f", &file]).await;
    let cond =
        |t: &str| format!(r#"{{"status":{{"conditions":[{{"type":"{t}","status":"True"}}]}}}}"#);
    // A main-resource write leaves status alone (the status subresource split) ...
    k.ok(&["patch", "pod", "p", "--type=merge", "-p", &cond("Ignored")])
        .await;
    // ... and strategic patches of pods/status merge conditions by type.
    for t in ["ContainersReady", "example.com/gate", "ContainersReady"] {
        k.ok(&[
            "patch",
            "pod",
            "p",
            "--subresource=status",
            "--type=strategic",
            "-p",
            &cond(t),
        ])
        .await;
    }
    let got = obj(&sim, "v1", "Pod", "p");
    let types: Vec<&str> = got["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["ContainersReady", "example.com/gate"]);
    assert_eq!(
        got["spec"]["readinessGates"][0]["conditionType"],
        "example.com/gate"
    );
    assert!(k.ok(&["get", "pods"]).await.starts_with("NAME"));
}
