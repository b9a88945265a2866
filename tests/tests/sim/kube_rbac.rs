//! kube-sim's RBAC judged by real kubectl: the function's own `infra/kubernetes/rbac.yaml`
//! applied with `kubectl apply`, a token minted with `kubectl create token`, questions asked
//! with `kubectl auth can-i --as`, and the token's requests refused with the apiserver's
//! exact `Forbidden` Status.

use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use clb_ingress_tests::kubectl::Kubectl;
use serde_json::{json, Value};

const SA: &str = "system:serviceaccount:kube-system:clb-ingress";
const RBAC_YAML: &str = include_str!("../../../infra/kubernetes/rbac.yaml");

async fn cluster() -> (KubeSimHandle, Kubectl) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = kube_sim::spawn(KubeSimConfig::default()).await.unwrap();
    let kubectl = Kubectl::new(&sim);
    kubectl.ok(&["create", "namespace", "shop"]).await;
    kubectl.apply_yaml(RBAC_YAML).await;
    (sim, kubectl)
}

/// `(status, body)` of a request made with `token`.
async fn call(sim: &KubeSimHandle, token: &str, method: &str, path: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", sim.url()))
        .bearer_auth(token);
    if method == reqwest::Method::PUT {
        req = req.json(
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                               "metadata": {"name": "web", "namespace": "shop"}}),
        );
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_token_from_kubectl_create_token_gets_only_what_rbac_yaml_grants() {
    let (sim, kubectl) = cluster().await;
    kubectl
        .ok(&[
            "create",
            "secret",
            "generic",
            "tls",
            "-n",
            "shop",
            "--from-literal=k=v",
        ])
        .await;
    let token = kubectl
        .ok(&["create", "token", "clb-ingress", "-n", "kube-system"])
        .await
        .trim()
        .to_string();
    assert!(!token.is_empty());

    // Granted: get a Secret by name; list Ingresses cluster-wide.
    let (code, body) = call(&sim, &token, "GET", "/api/v1/namespaces/shop/secrets/tls").await;
    assert_eq!(
        (code, body["metadata"]["name"].as_str()),
        (200, Some("tls"))
    );
    let (code, _) = call(&sim, &token, "GET", "/apis/networking.k8s.io/v1/ingresses").await;
    assert_eq!(code, 200);

    // Not granted: listing Secrets, with the apiserver's Status word for word.
    let (code, body) = call(&sim, &token, "GET", "/api/v1/namespaces/shop/secrets").await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("secrets is forbidden: User \"{SA}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\""),
               "reason": "Forbidden", "details": {"kind": "secrets"}, "code": 403})
    );
    let (code, body) = call(&sim, &token, "GET", "/api/v1/secrets").await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        format!("secrets is forbidden: User \"{SA}\" cannot list resource \"secrets\" in API group \"\" at the cluster scope")
    );

    // The status subresource is its own resource: PUT on it is granted, on the Ingress not.
    let ing = "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web";
    let (code, body) = call(&sim, &token, "PUT", ing).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        format!("ingresses.networking.k8s.io \"web\" is forbidden: User \"{SA}\" cannot update resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace \"shop\"")
    );
    assert_eq!(
        body["details"],
        json!({"name": "web", "group": "networking.k8s.io", "kind": "ingresses"})
    );
    let (code, body) = call(&sim, &token, "PUT", &format!("{ing}/status")).await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));

    // Nothing was written by the refused requests; the request log names the user.
    assert!(sim
        .get_object("networking.k8s.io/v1", "Ingress", Some("shop"), "web")
        .is_none());
    let refused = sim
        .request_log()
        .into_iter()
        .filter(|r| r.status == 403)
        .count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn kubectl_auth_can_i_as_the_service_account_answers_from_the_bindings() {
    let (_sim, kubectl) = cluster().await;
    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--as", SA]);
        let all: Vec<String> = all.into_iter().map(str::to_string).collect();
        let kubectl = &kubectl;
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            kubectl.run(&args).await.stdout.trim().to_string()
        }
    };
    assert_eq!(can_i(&["get", "secrets", "-n", "shop"]).await, "yes");
    assert_eq!(can_i(&["list", "secrets", "-n", "shop"]).await, "no");
    assert_eq!(can_i(&["watch", "secrets", "-A"]).await, "no");
    assert_eq!(can_i(&["list", "ingresses", "-A"]).await, "yes");
    assert_eq!(can_i(&["delete", "ingresses", "-n", "shop"]).await, "no");
    assert_eq!(
        can_i(&["update", "ingresses", "--subresource=status", "-n", "shop"]).await,
        "yes"
    );
    assert_eq!(can_i(&["update", "ingresses", "-n", "shop"]).await, "no");
    // The readiness gate: a Pod by name and its status condition, nothing more.
    assert_eq!(can_i(&["get", "pods", "-n", "shop"]).await, "yes");
    assert_eq!(can_i(&["list", "pods", "-n", "shop"]).await, "no");
    assert_eq!(
        can_i(&["patch", "pods", "--subresource=status", "-n", "shop"]).await,
        "yes"
    );
    assert_eq!(can_i(&["patch", "pods", "-n", "shop"]).await, "no");
    assert_eq!(can_i(&["create", "services", "-n", "shop"]).await, "no");
    // The admin is not governed.
    let admin = kubectl
        .ok(&["auth", "can-i", "delete", "secrets", "-A"])
        .await;
    assert_eq!(admin.trim(), "yes");

    // kubectl --as is refused with the apiserver's message, and changes nothing.
    let out = kubectl
        .run(&["get", "secrets", "-n", "shop", "--as", SA])
        .await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains(&format!("Error from server (Forbidden): secrets is forbidden: User \"{SA}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\"")),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_role_binding_grants_only_in_its_namespace_and_only_the_named_objects() {
    let (sim, kubectl) = cluster().await;
    kubectl.ok(&["create", "namespace", "other"]).await;
    for ns in ["shop", "other"] {
        for name in ["tls", "db"] {
            kubectl
                .ok(&[
                    "create",
                    "secret",
                    "generic",
                    name,
                    "-n",
                    ns,
                    "--from-literal=k=v",
                ])
                .await;
        }
    }
    kubectl
        .ok(&["create", "serviceaccount", "reader", "-n", "shop"])
        .await;
    kubectl
        .ok(&[
            "create",
            "role",
            "tls-reader",
            "-n",
            "shop",
            "--verb=get",
            "--resource=secrets",
            "--resource-name=tls",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "rolebinding",
            "reader",
            "-n",
            "shop",
            "--role=tls-reader",
            "--serviceaccount=shop:reader",
        ])
        .await;
    let token = kubectl
        .ok(&["create", "token", "reader", "-n", "shop"])
        .await
        .trim()
        .to_string();
    let get = |ns: &str, name: &str| format!("/api/v1/namespaces/{ns}/secrets/{name}");
    assert_eq!(call(&sim, &token, "GET", &get("shop", "tls")).await.0, 200);
    assert_eq!(call(&sim, &token, "GET", &get("shop", "db")).await.0, 403);
    assert_eq!(call(&sim, &token, "GET", &get("other", "tls")).await.0, 403);
    assert_eq!(
        call(&sim, &token, "DELETE", &get("shop", "tls")).await.0,
        403
    );

    // A token for an account that does not exist is refused; an unknown token is 401.
    let missing = kubectl
        .run(&["create", "token", "nobody", "-n", "shop"])
        .await;
    assert!(!missing.ok);
    assert!(missing.stderr.contains("NotFound") || missing.stderr.contains("not found"));
    assert_eq!(
        call(&sim, "not-a-token", "GET", &get("shop", "tls"))
            .await
            .0,
        401
    );
}
