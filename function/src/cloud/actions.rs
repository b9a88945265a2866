//! Every cloud API action the function calls, by service: what its CAM policy
//! (`infra/terraform/main.tf`) grants, and nothing more. The tests below keep the three in
//! step: the actions named where this module's siblings make calls must be exactly
//! [`CALLED`] plus [`CLIENT_ONLY`], and the policy must grant exactly [`CALLED`].

use super::client::{CLB_SERVICE, TAG_SERVICE};
use super::scf::SCF_SERVICE;
use super::ssl::SSL_SERVICE;

/// `(service, action)` of every call the function makes.
pub const CALLED: &[(&str, &str)] = &[
    // observe: our cluster's CLBs, their listeners and rules, their targets.
    (CLB_SERVICE, "DescribeLoadBalancers"),
    (CLB_SERVICE, "DescribeListeners"),
    (CLB_SERVICE, "DescribeTargets"),
    // the sweep: listeners, rules and targets of 30 CLBs a call.
    (CLB_SERVICE, "DescribeTargetHealth"),
    // the account's per-CLB quotas, for a CLB near a default limit (model/limits.rs).
    (CLB_SERVICE, "DescribeQuota"),
    // every async write waits for its task.
    (CLB_SERVICE, "DescribeTaskStatus"),
    // apply: the writes of a plan.
    (CLB_SERVICE, "CreateLoadBalancer"),
    (CLB_SERVICE, "DeleteLoadBalancer"),
    (CLB_SERVICE, "CreateListener"),
    (CLB_SERVICE, "ModifyListener"),
    (CLB_SERVICE, "DeleteLoadBalancerListeners"),
    (CLB_SERVICE, "CreateRule"),
    (CLB_SERVICE, "ModifyRule"),
    (CLB_SERVICE, "DeleteRule"),
    (CLB_SERVICE, "ModifyDomainAttributes"),
    (CLB_SERVICE, "BatchRegisterTargets"),
    (CLB_SERVICE, "BatchDeregisterTargets"),
    (CLB_SERVICE, "BatchModifyTargetWeight"),
    // lifecycle annotations: deletion protection, pass-to-target, security groups.
    (CLB_SERVICE, "ModifyLoadBalancerAttributes"),
    (CLB_SERVICE, "SetLoadBalancerSecurityGroups"),
    // redirects (auto-rewrite, rewrite entries): added and removed as planned.
    (CLB_SERVICE, "ManualRewrite"),
    (CLB_SERVICE, "DeleteRewrite"),
    // reused (existLbId) CLBs get and lose our cluster/UID tags.
    (TAG_SERVICE, "TagResources"),
    (TAG_SERVICE, "UnTagResources"),
    // the Tag API is global: which regions hold our CLBs (reconcile/regions.rs).
    (TAG_SERVICE, "GetResources"),
    // kubernetes.io/tls Secrets: our uploaded certificates, found by tag, bound, and
    // deleted once a fresh read shows no CLB using them.
    (SSL_SERVICE, "UploadCertificate"),
    (SSL_SERVICE, "DescribeCertificates"),
    (SSL_SERVICE, "DeleteCertificate"),
    (CLB_SERVICE, "DescribeLoadBalancerListByCertId"),
    // a sharded sweep invokes this same function once per shard.
    (SCF_SERVICE, "Invoke"),
];

/// Actions the client has a method for that nothing in the function calls (tests and tools
/// use them). Not granted: a function that starts calling one fails the tests below until
/// it moves to [`CALLED`] and the policy grants it.
pub const CLIENT_ONLY: &[(&str, &str)] = &[
    (CLB_SERVICE, "DeleteListener"),
    // cloud/rewrite.rs: auto-rewrite is planned as ManualRewrite pairs (AutoRewrite makes
    // its own listener and rules, outside the plan); redirects are read from DescribeListeners.
    (CLB_SERVICE, "AutoRewrite"),
    (CLB_SERVICE, "DescribeRewrite"),
];

/// Whether a call of `action` may change something: reads are `Describe*`, `Get*` (the Tag
/// API's GetResources) and `Inquiry*`.
pub fn is_write(action: &str) -> bool {
    !["Describe", "Get", "Inquiry"]
        .iter()
        .any(|read| action.starts_with(read))
}

/// CAM action names that authorise SCF's `Invoke` API. SCF's policy examples name
/// `scf:InvokeFunction`; whether `Invoke` is authorised by it or by `scf:Invoke` is
/// UNVERIFIED (tencent-cloud-more.md §4.4), so the policy grants both, on this one function.
pub const SCF_INVOKE_CAM_ACTIONS: &[&str] = &["scf:Invoke", "scf:InvokeFunction"];

/// The CAM action names (`service:Action`) the policy must grant.
pub fn cam_actions() -> Vec<String> {
    let mut out: Vec<String> = CALLED
        .iter()
        .filter(|(service, _)| *service != SCF_SERVICE)
        .map(|(service, action)| format!("{service}:{action}"))
        .collect();
    out.extend(SCF_INVOKE_CAM_ACTIONS.iter().map(|a| a.to_string()));
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn repo_file(path: &str) -> String {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// What a call site looks like just before the action's string literal: the typed
    /// helpers of clb.rs (`clb`, `clb_async`, `batch_targets`), a named `ACTION` const, or
    /// the action argument after a service version (`call_typed(SVC, VERSION, "Action"`).
    const CALL_MARKERS: &[&str] = &[
        ".clb(",
        ".clb_async(",
        ".batch_targets(",
        "ACTION: &str =",
        "_VERSION,",
    ];

    /// Action literals at call sites in the non-test code of `source`.
    fn called_in(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        let mut out = Vec::new();
        for marker in CALL_MARKERS {
            for (at, _) in code.match_indices(marker) {
                let rest = code[at + marker.len()..].trim_start();
                if let Some(lit) = rest.strip_prefix('"') {
                    if let Some(end) = lit.find('"') {
                        out.push(lit[..end].to_string());
                    }
                }
            }
        }
        out
    }

    fn snake_case(action: &str) -> String {
        let mut s = String::new();
        for (i, c) in action.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        }
        s
    }

    #[test]
    fn the_action_list_is_exactly_what_the_cloud_client_source_calls() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/cloud");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                found.extend(called_in(&std::fs::read_to_string(&path).unwrap()));
            }
        }
        let listed: BTreeSet<String> = CALLED
            .iter()
            .chain(CLIENT_ONLY)
            .map(|(_, a)| a.to_string())
            .collect();
        assert_eq!(found, listed);
        // The scan is not vacuous: it sees calls written each way.
        for a in [
            "DescribeTaskStatus",
            "CreateLoadBalancer",
            "Invoke",
            "TagResources",
        ] {
            assert!(found.contains(a), "{a}");
        }
    }

    #[test]
    fn client_only_actions_have_no_caller_in_the_function() {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        let mut sources = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
                    sources.push((path, code));
                }
            }
        }
        for (_, action) in CLIENT_ONLY {
            let method = format!(".{}(", snake_case(action));
            for (path, code) in &sources {
                assert!(
                    !code.contains(&method),
                    "{} calls {method}: move {action} to CALLED and grant it",
                    path.display()
                );
            }
        }
        assert_eq!(
            snake_case("ModifyLoadBalancerAttributes"),
            "modify_load_balancer_attributes"
        );
    }

    /// The quoted `service:Action` strings of one `name = [ ... ]` list in main.tf.
    fn terraform_list(tf: &str, name: &str) -> Vec<String> {
        let start = tf
            .find(&format!("{name} = ["))
            .unwrap_or_else(|| panic!("main.tf has no {name} list"));
        let body = &tf[start..];
        let end = body.find(']').unwrap_or(body.len());
        body[..end]
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string))
            .collect()
    }

    #[test]
    fn the_cam_policy_grants_exactly_the_actions_the_client_calls() {
        let tf = repo_file("infra/terraform/main.tf");
        let mut granted: Vec<String> = ["clb_actions", "tag_actions", "scf_actions", "ssl_actions"]
            .iter()
            .flat_map(|l| terraform_list(&tf, l))
            .collect();
        granted.sort();
        assert_eq!(granted, cam_actions());
    }

    #[test]
    fn the_cam_policy_scopes_clb_and_tag_actions_to_the_clbs_of_the_functions_and_cross_regions() {
        let tf = repo_file("infra/terraform/main.tf");
        let policy = &tf[tf
            .find("resource \"tencentcloud_cam_policy\"")
            .expect("policy resource")..];
        let policy = &policy[..policy.find("\n}\n").unwrap_or(policy.len())];
        // Every statement names its resources; none is the whole account.
        let lines = |key: &str| {
            policy
                .lines()
                .filter(|l| l.trim_start().starts_with(key) && l.contains('='))
                .count()
        };
        assert_eq!(lines("action "), 4, "{policy}");
        assert_eq!(lines("resource "), 4, "{policy}");
        assert!(!policy.contains("[\"*\"]"), "{policy}");
        for actions in ["local.clb_actions", "local.tag_actions"] {
            let at = policy.find(actions).expect(actions);
            let stmt = &policy[at..];
            let resource = stmt[..stmt.find('}').unwrap_or(stmt.len())]
                .lines()
                .find(|l| l.trim_start().starts_with("resource"))
                .unwrap_or("");
            assert!(
                resource.contains("local.clb_resources"),
                "{actions}: {resource}"
            );
        }
        // The six-segment name of every CLB in this account of the function's region and of
        // the regions cross-region-id Ingresses name (tencent-cloud.md §3:
        // qcs::clb:<region>:uin/<uin>:clb/<lb-id>), and those regions only.
        let def = |name: &str| {
            tf.lines()
                .find(|l| l.trim_start().starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} local"))
                .to_string()
        };
        assert!(
            def("clb_resources").contains(
                "[for r in local.clb_regions : \"qcs::clb:${r}:uin/${data.tencentcloud_user_info.current.owner_uin}:clb/*\"]"
            ),
            "{}",
            def("clb_resources")
        );
        assert!(
            def("clb_regions").contains("distinct(concat([var.region], var.clb_extra_regions))"),
            "{}",
            def("clb_regions")
        );
        // The same regions are searched while the Tag API fails.
        assert!(
            tf.contains("CLB_EXTRA_REGIONS = join(\",\", var.clb_extra_regions)"),
            "main.tf passes var.clb_extra_regions as CLB_EXTRA_REGIONS"
        );
    }
}
