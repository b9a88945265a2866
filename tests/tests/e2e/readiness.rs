//! The direct-access readiness gate end to end: real `kubectl` creates Pods that declare
//! `cloud.tencent.com/load-balancer-backendgroup-ready` and the EndpointSlice naming them;
//! kube-sim's audit webhook drives the function, which registers the waiting Pods on
//! clb-sim and then sets the gate's condition, read back from kube-sim and the CLB's targets
//! read back with the official SDK. The gate is set once (a lost race on the Pod's
//! resourceVersion is read again and retried once), a Pod without it is never written,
//! a Pod that is gone changes nothing, and Ready Pods cost no Pod request at all.

use clb_ingress::model::readiness::READINESS_GATE;

use super::graceful::{ingress_yaml, sdk_targets, serve_direct, weights, DIRECT, NS, PODS_SERVICE};
use crate::support::stack::*;

/// A Pod `name` of Service `pods`, declaring the gate when `gated`.
fn pod_yaml(name: &str, gated: bool) -> String {
    let gates = if gated {
        format!("  readinessGates:\n  - conditionType: {READINESS_GATE}\n")
    } else {
        String::new()
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\n  labels:\n    app: pods\nspec:\n  containers:\n  - name: app\n    image: nginx\n{gates}"
    )
}

/// The EndpointSlice of Service `pods`: (address, ready, Pod it names).
fn slice_yaml(endpoints: &[(&str, bool, &str)]) -> String {
    let mut out = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: pods-x7k2p\n  namespace: {NS}\n  labels:\n    kubernetes.io/service-name: pods\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n"
    );
    for (ip, ready, pod) in endpoints {
        out.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  conditions: {{ready: {ready}, serving: {ready}, terminating: false}}\n  targetRef: {{kind: Pod, name: {pod}, namespace: {NS}}}\n"
        ));
    }
    out
}

/// The gate's condition status on Pod `name`, if it has one.
fn gate(stack: &Stack, name: &str) -> Option<String> {
    let pod = stack.kube.get_object("v1", "Pod", Some(NS), name)?;
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == READINESS_GATE)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// The function's requests on Pods so far: (method, path).
fn pod_requests(stack: &Stack) -> Vec<(String, String)> {
    stack
        .kube
        .request_log()
        .into_iter()
        .filter(|r| r.username == FUNCTION_USER && r.path.contains("/pods/"))
        .map(|r| (r.method, r.path))
        .collect()
}

fn writes(requests: &[(String, String)]) -> Vec<&(String, String)> {
    requests.iter().filter(|(m, _)| m != "GET").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_declaring_the_gate_get_it_once_their_targets_are_registered_and_never_again() {
    let stack = Stack::start().await;
    stack.kubectl.apply_sample("00-namespace.yaml").await;
    stack.kubectl.apply_yaml(PODS_SERVICE).await;
    for (name, gated) in [("p0", true), ("p1", true), ("p2", true), ("p3", false)] {
        stack.kubectl.apply_yaml(&pod_yaml(name, gated)).await;
    }
    // p0 is Ready (its gate was set before); p1 and p2 have ready containers and wait for the
    // CLB; p3 has no gate and is not ready; "ghost" is an endpoint whose Pod is gone.
    let conditions = |c: &str| format!(r#"{{"status":{{"conditions":[{c}]}}}}"#);
    let ready = r#"{"type":"ContainersReady","status":"True"}"#;
    let gate_true = format!(r#"{{"type":"{READINESS_GATE}","status":"True"}}"#);
    for (pod, patch) in [
        ("p0", conditions(&format!("{ready},{gate_true}"))),
        ("p1", conditions(ready)),
        ("p2", conditions(ready)),
    ] {
        let status = ["--subresource=status"];
        stack
            .kubectl
            .patch(NS, ["pod", pod], "strategic", &patch, &status)
            .await;
    }
    let waiting = [
        ("10.1.0.10", true, "p0"),
        ("10.1.0.11", false, "p1"),
        ("10.1.0.12", false, "p2"),
        ("10.1.0.13", false, "p3"),
        ("10.1.0.14", false, "ghost"),
    ];
    stack.kubectl.apply_yaml(&slice_yaml(&waiting)).await;

    // An Ingress of another class naming the same Service: its Pods are never read or written.
    let foreign = ingress_yaml("pods", DIRECT)
        .replace("name: web", "name: foreign")
        .replace("ingress.class: qcloud", "ingress.class: nginx");
    stack.kubectl.apply_yaml(&foreign).await;
    stack.quiet(0).await;
    assert_eq!(pod_requests(&stack), [], "a foreign Ingress's Pods");
    assert_eq!(gate(&stack, "p1"), None);

    // Ours, direct access: one run registers p0, p1, p2 and then opens p1's and p2's gates.
    // The kubelet wins the race on p1's status once: the function reads p1 again and
    // marks it on the new version.
    let p1_status = format!("/api/v1/namespaces/{NS}/pods/p1/status");
    stack.kube.fail_next("PATCH", &p1_status, 1, 409);
    let lb_id = serve_direct(&stack).await;
    let targets = sdk_targets(&stack, &lb_id).await;
    assert_eq!(
        targets,
        [
            "10.1.0.10:8080 w10",
            "10.1.0.11:8080 w10",
            "10.1.0.12:8080 w10"
        ],
        "waiting Pods are registered; p3 (no gate, not ready) and the ghost are not"
    );
    // The gate is True exactly on the gated Pods the CLB shows serving.
    for (ip, _, pod) in &waiting {
        let registered = targets.iter().any(|t| t.starts_with(&format!("{ip}:")));
        let declares = *pod != "p3" && *pod != "ghost";
        let expect = (registered && declares).then(|| "True".to_string());
        assert_eq!(gate(&stack, pod), expect, "{pod}");
    }
    assert!(stack
        .kube
        .get_object("v1", "Pod", Some(NS), "ghost")
        .is_none());
    let requests = pod_requests(&stack);
    let patched: Vec<&str> = writes(&requests)
        .iter()
        .map(|(m, p)| {
            assert_eq!(m, "PATCH");
            p.as_str()
        })
        .collect();
    assert_eq!(
        patched,
        [
            p1_status.clone(),
            p1_status.clone(),
            format!("/api/v1/namespaces/{NS}/pods/p2/status")
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "{requests:?}"
    );
    let conflicts = stack
        .kube
        .request_log()
        .into_iter()
        .filter(|r| r.path == p1_status && r.status == 409)
        .count();
    assert_eq!(conflicts, 1);
    assert!(
        requests.iter().all(|(_, p)| !p.ends_with("/pods/p0")),
        "a ready endpoint's Pod is never read: {requests:?}"
    );

    // A second run (the Ingress changes) while the slice still shows them not ready: the
    // Pods are read, none is written, and the CLB is not written either.
    let (cloud_before, pods_before) = (stack.cloud_writes().len(), requests.len());
    stack.kubectl.annotate_ingress(NS, "web", "team=web").await;
    stack.quiet(0).await;
    let again = pod_requests(&stack)[pods_before..].to_vec();
    assert_eq!(writes(&again), Vec::<&(String, String)>::new());
    assert!(!again.is_empty(), "the not-ready endpoints' Pods are read");
    assert_eq!(stack.cloud_writes().len(), cloud_before);

    // A new gated Pod p4 starts: the endpoint-slice write alone (audit trigger) brings the
    // run that registers it and opens its gate: one more Pod write, one registration.
    stack.kubectl.apply_yaml(&pod_yaml("p4", true)).await;
    let mut with_p4 = waiting.to_vec();
    with_p4.push(("10.1.0.15", false, "p4"));
    let (cloud_before, patches_before) = (stack.cloud_writes().len(), writes(&requests).len());
    stack.kubectl.apply_yaml(&slice_yaml(&with_p4)).await;
    stack.quiet(0).await;
    assert_eq!(gate(&stack, "p4").as_deref(), Some("True"));
    assert!(sdk_targets(&stack, &lb_id)
        .await
        .contains(&"10.1.0.15:8080 w10".to_string()));
    let requests = pod_requests(&stack);
    assert_eq!(writes(&requests).len(), patches_before + 1, "{requests:?}");
    let new_writes: Vec<String> = stack.cloud_writes()[cloud_before..]
        .iter()
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(new_writes, ["BatchRegisterTargets"]);

    // The Pods turn Ready and the endpoint-slice controller says so (the ghost is gone, p3
    // ready too): from then on no run and no sweep makes a single Pod request.
    stack
        .kubectl
        .apply_yaml(&slice_yaml(&[
            ("10.1.0.10", true, "p0"),
            ("10.1.0.11", true, "p1"),
            ("10.1.0.12", true, "p2"),
            ("10.1.0.13", true, "p3"),
            ("10.1.0.15", true, "p4"),
        ]))
        .await;
    stack.quiet(0).await;
    let steady = pod_requests(&stack).len();
    let cloud_steady = stack.cloud_writes().len();
    stack.kubectl.annotate_ingress(NS, "web", "team=shop").await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(
        pod_requests(&stack).len(),
        steady,
        "{:?}",
        pod_requests(&stack)
    );
    assert_eq!(stack.cloud_writes().len(), cloud_steady);
    assert_eq!(weights(&stack, &lb_id).len(), 5);
    assert_eq!(gate(&stack, "p3"), None);

    // A trigger lost: a new gated Pod's endpoint is stored with no audit record, so only
    // the sweep can find it. Its snapshot reads no Pods, but an unbound not-ready Pod makes
    // it look at the Ingress, which registers the Pod and opens its gate.
    stack.kubectl.apply_yaml(&pod_yaml("p6", true)).await;
    stack.quiet(0).await;
    let all_ready = [
        ("10.1.0.10", true, "p0"),
        ("10.1.0.11", true, "p1"),
        ("10.1.0.12", true, "p2"),
        ("10.1.0.13", true, "p3"),
        ("10.1.0.15", true, "p4"),
    ];
    let mut with_p6 = all_ready.to_vec();
    with_p6.push(("10.1.0.17", false, "p6"));
    let mut lost: serde_json::Value =
        serde_yaml::from_str(&slice_yaml(&with_p6)).expect("slice YAML");
    lost["metadata"]["resourceVersion"] = serde_json::Value::Null;
    stack.kube.put_object(lost).expect("slice stored");
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(gate(&stack, "p6").as_deref(), Some("True"));
    let sweep_writes: Vec<String> = stack.cloud_writes()[cloud_steady..]
        .iter()
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(sweep_writes, ["BatchRegisterTargets"]);
    assert_eq!(writes(&pod_requests(&stack)).len(), patches_before + 2);
    // p6 turns Ready: nothing more to write.
    let cloud_steady = stack.cloud_writes().len();
    let mut p6_ready = all_ready.to_vec();
    p6_ready.push(("10.1.0.17", true, "p6"));
    stack.kubectl.apply_yaml(&slice_yaml(&p6_ready)).await;
    stack.quiet(0).await;
    assert_eq!(stack.cloud_writes().len(), cloud_steady);

    // `mode: skip`: a new gated Pod is neither registered nor marked.
    stack
        .kubectl
        .annotate_ingress(NS, "web", "ingress.cloud.tencent.com/mode=skip")
        .await;
    stack.kubectl.apply_yaml(&pod_yaml("p5", true)).await;
    stack
        .kubectl
        .apply_yaml(&slice_yaml(&[
            ("10.1.0.10", true, "p0"),
            ("10.1.0.16", false, "p5"),
        ]))
        .await;
    stack.quiet(0).await;
    assert_eq!(gate(&stack, "p5"), None);
    assert_eq!(writes(&pod_requests(&stack)).len(), patches_before + 2);
    let skip_writes: Vec<String> = stack.cloud_writes()[cloud_steady..]
        .iter()
        .map(|c| c.action.clone())
        .collect();
    // Only the skip mark on the CLB (so a release keeps it); no target is registered.
    assert_eq!(skip_writes, ["TagResources"]);
}
