//! `ingress.cloud.tencent.com/cross-region-id`: the Ingress's CLB lives in another region
//! than the cluster (tke-annotations.md §4, C: with `cross-vpc-id`, a new CLB in that VPC of
//! that region; with `existLbId`, a CLB of that region is adopted; CCN and an allow-list
//! ticket are the user's part). Pure: which region, whether the request is complete, and the
//! target form a CLB of another region can reach.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Node;

use super::annotations::{CROSS_VPC_ID, EXIST_LB_ID};
use super::desired::DesiredListener;
use super::graceful::TargetWeight;
use super::lb::{Backend, ListenerKey, TargetKey};
use super::problem::{codes, Problem};
use super::refs::node_instance_id;

pub const CROSS_REGION_ID: &str = "ingress.cloud.tencent.com/cross-region-id";

/// ASSUMPTION (UNCONFIRMED which of the two TKE uses; the fields are C, tencent-cloud.md §2.3
/// and the ModifyLoadBalancerAttributes page: `TargetRegionInfo` is cross-region binding 1.0,
/// `SnatPro` is cross-region binding 2.0, whose targets are IPs reached over CCN): a CLB we
/// create in another region is created with `SnatPro: true` in the CreateLoadBalancer call
/// itself (no later write), and no `TargetRegionInfo` is sent. An adopted CLB's attributes
/// stay as its owner set them (the allow-list and CCN are the user's part anyway).
pub const CREATE_FIELDS: [(&str, bool); 1] = [("SnatPro", true)];

/// Node address type whose IP a CLB of another region registers in NodePort mode (core/v1).
/// ASSUMPTION (UNCONFIRMED: tencent-cloud.md §2.3 only says cross-region targets are EniIp):
/// the Node's `InternalIP` is its primary ENI's private IP, as on TKE's CVM nodes.
pub const NODE_ADDRESS_TYPE: &str = "InternalIP";

/// The region a `cross-region-id` value names, if well-formed: lowercase words joined by
/// `-`, at least two (`ap-guangzhou`, `na-siliconvalley`, `ap-shanghai-fsi`).
pub fn region_of(value: &str) -> Option<&str> {
    let parts: Vec<&str> = value.split('-').collect();
    let word = |w: &&str| {
        !w.is_empty()
            && w.len() <= 20
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let ok = parts.len() >= 2
        && parts.len() <= 4
        && parts.iter().all(word)
        && parts[0].chars().all(|c| c.is_ascii_lowercase());
    ok.then_some(value)
}

/// The region the Ingress asks its CLB to live in (`None`: the cluster's), or why it is
/// refused. Creating needs the VPC of that region (`cross-vpc-id`); adopting needs nothing
/// more. A refusal is E4024 (bad create parameters, TKE's code for a request CreateLoadBalancer
/// cannot take; tencent-cloud.md §1.9).
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Option<String>, Problem> {
    let get = |k: &str| {
        annotations
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(value) = get(CROSS_REGION_ID) else {
        return Ok(None);
    };
    let Some(region) = region_of(value) else {
        return Err(Problem::error(
            codes::BAD_CREATE_PARAMS,
            format!("{CROSS_REGION_ID}: {value:?} is not a region (e.g. ap-shanghai)"),
        ));
    };
    if get(EXIST_LB_ID).is_none() && get(CROSS_VPC_ID).is_none() {
        return Err(Problem::error(
            codes::BAD_CREATE_PARAMS,
            format!(
                "{CROSS_REGION_ID}: {region} needs {CROSS_VPC_ID} (the VPC of {region} to create \
                 the CLB in) or {EXIST_LB_ID} (a CLB of {region} to use)"
            ),
        ));
    }
    Ok(Some(region.to_string()))
}

/// The region a CLB of `wanted` lives in: `wanted`, else the cluster's `home`.
pub fn region_or<'a>(wanted: Option<&'a str>, home: &'a str) -> &'a str {
    wanted.filter(|r| !r.is_empty()).unwrap_or(home)
}

/// NodePort targets for a CLB of another region: a CVM instance id means nothing there
/// (tencent-cloud.md §2.3: EniIp is required across regions), so each Node's instance becomes
/// its private IP. A Node without one is left out and reported once.
pub fn node_ips_for_instances(
    listeners: &mut BTreeMap<ListenerKey, DesiredListener>,
    nodes: &[Node],
    problems: &mut Vec<Problem>,
) {
    let ips: HashMap<String, String> = nodes
        .iter()
        .filter_map(|n| Some((node_instance_id(n)?, node_private_ip(n)?)))
        .collect();
    let mut missing: Vec<String> = Vec::new();
    for rule in listeners.values_mut().flat_map(|l| l.rules.values_mut()) {
        let targets = std::mem::take(&mut rule.targets);
        rule.targets = targets
            .into_iter()
            .filter_map(
                |(key, weight): (TargetKey, TargetWeight)| match &key.backend {
                    Backend::EniIp(_) => Some((key, weight)),
                    Backend::Instance(id) => match ips.get(id) {
                        Some(ip) => Some((
                            TargetKey {
                                backend: Backend::EniIp(ip.clone()),
                                port: key.port,
                            },
                            weight,
                        )),
                        None => {
                            if !missing.contains(id) {
                                missing.push(id.clone());
                            }
                            None
                        }
                    },
                },
            )
            .collect();
    }
    if !missing.is_empty() {
        problems.push(Problem::warning(
            codes::NO_TARGETS,
            format!(
                "the CLB is in another region and reaches Nodes by private IP; no {NODE_ADDRESS_TYPE} \
                 for {}: left out",
                missing.join(", ")
            ),
        ));
    }
}

fn node_private_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == NODE_ADDRESS_TYPE && !a.address.is_empty())
        .map(|a| a.address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::desired::DesiredRule;
    use crate::model::lb::RuleKey;
    use crate::model::problem::Severity;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_region_with_a_vpc_or_an_existing_clb_is_where_the_clb_lives() {
        let with_vpc = ann(&[(CROSS_REGION_ID, "ap-shanghai"), (CROSS_VPC_ID, "vpc-1")]);
        assert_eq!(parse(&with_vpc), Ok(Some("ap-shanghai".into())));
        let with_lb = ann(&[
            (CROSS_REGION_ID, " na-siliconvalley "),
            (EXIST_LB_ID, "lb-1"),
        ]);
        assert_eq!(parse(&with_lb), Ok(Some("na-siliconvalley".into())));
        assert_eq!(parse(&ann(&[(CROSS_VPC_ID, "vpc-1")])), Ok(None));
        assert_eq!(parse(&ann(&[(CROSS_REGION_ID, "")])), Ok(None));
    }

    #[test]
    fn a_malformed_region_is_refused_with_e4024() {
        for bad in [
            "Ap-Shanghai",
            "shanghai",
            "ap_shanghai",
            "ap-",
            "-ap",
            "ap-sh anghai",
            "1a-b",
        ] {
            let a = ann(&[(CROSS_REGION_ID, bad), (CROSS_VPC_ID, "vpc-1")]);
            let p = parse(&a).expect_err(bad);
            assert_eq!(
                (p.code, p.severity),
                (codes::BAD_CREATE_PARAMS, Severity::Error)
            );
        }
        assert!(region_of("ap-shanghai-fsi").is_some());
    }

    #[test]
    fn creating_in_another_region_without_its_vpc_is_refused_with_e4024() {
        let p = parse(&ann(&[(CROSS_REGION_ID, "ap-shanghai")])).unwrap_err();
        assert_eq!(p.code, codes::BAD_CREATE_PARAMS);
        assert!(p.message.contains(CROSS_VPC_ID), "{}", p.message);
    }

    #[test]
    fn the_region_defaults_to_the_clusters() {
        assert_eq!(region_or(None, "ap-guangzhou"), "ap-guangzhou");
        assert_eq!(region_or(Some(""), "ap-guangzhou"), "ap-guangzhou");
        assert_eq!(
            region_or(Some("ap-shanghai"), "ap-guangzhou"),
            "ap-shanghai"
        );
    }

    fn node(instance: &str, ip: Option<&str>) -> Node {
        Node {
            spec: Some(NodeSpec {
                provider_id: Some(format!("qcloud:///100003/{instance}")),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(
                    ip.into_iter()
                        .map(|ip| NodeAddress {
                            type_: NODE_ADDRESS_TYPE.into(),
                            address: ip.into(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn node_instances_become_their_private_ips_and_a_node_without_one_is_reported() {
        let target = |b: Backend| TargetKey {
            backend: b,
            port: 30080,
        };
        let mut rule = DesiredRule::default();
        rule.targets.insert(
            target(Backend::Instance("ins-aaaaaaaa".into())),
            TargetWeight::Serve,
        );
        rule.targets.insert(
            target(Backend::Instance("ins-bbbbbbbb".into())),
            TargetWeight::Drain,
        );
        rule.targets.insert(
            target(Backend::EniIp("10.0.9.9".into())),
            TargetWeight::Serve,
        );
        let mut listener = DesiredListener::default();
        listener.rules.insert(
            RuleKey {
                domain: crate::model::lb::Domain::Default,
                url: "/".into(),
            },
            rule,
        );
        let mut listeners = BTreeMap::from([(ListenerKey::HTTP_80, listener)]);
        let nodes = [
            node("ins-aaaaaaaa", Some("10.0.0.1")),
            node("ins-bbbbbbbb", None),
        ];
        let mut problems = Vec::new();
        node_ips_for_instances(&mut listeners, &nodes, &mut problems);
        let targets = &listeners[&ListenerKey::HTTP_80]
            .rules
            .values()
            .next()
            .unwrap()
            .targets;
        let got: Vec<(String, TargetWeight)> = targets
            .iter()
            .map(|(k, w)| (k.backend.to_string(), *w))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.1".to_string(), TargetWeight::Serve),
                ("10.0.9.9".to_string(), TargetWeight::Serve)
            ]
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("ins-bbbbbbbb"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn an_ingress_creating_in_another_region_asks_for_snat_pro_and_binds_nodes_by_ip() {
        use crate::model::desired::tests::{base_view, ingress, manage, path};
        use crate::model::LbSource;
        let ing = ingress(
            serde_json::json!({
                CROSS_REGION_ID: "ap-shanghai",
                CROSS_VPC_ID: "vpc-sh000001",
            }),
            serde_json::json!({"rules": [{"http": {"paths": [
                path("/", "Prefix", "web", serde_json::json!({"number": 80}))
            ]}}]}),
        );
        let mut view = base_view(ing);
        view.nodes[0]
            .status
            .get_or_insert_with(Default::default)
            .addresses = Some(vec![NodeAddress {
            type_: NODE_ADDRESS_TYPE.into(),
            address: "10.0.0.1".into(),
        }]);
        let d = manage(&view);
        let LbSource::Create(spec) = &d.load_balancer else {
            panic!("expected a create")
        };
        let req = spec.create_request();
        assert_eq!(req["SnatPro"], true);
        assert_eq!(req["VpcId"], "vpc-sh000001");
        let targets: Vec<String> = d
            .listeners
            .values()
            .flat_map(|l| l.rules.values())
            .flat_map(|r| r.targets.keys())
            .map(|k| format!("{}:{}", k.backend, k.port))
            .collect();
        assert_eq!(targets, vec!["10.0.0.1:30080".to_string()]);
        assert!(
            d.problems.iter().any(|p| p.message.contains("ins-bbb")),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn the_same_ingress_without_cross_region_id_binds_instances_and_sends_no_snat_pro() {
        use crate::model::desired::tests::{base_view, ingress, manage, path};
        use crate::model::LbSource;
        let ing = ingress(
            serde_json::json!({}),
            serde_json::json!({"rules": [{"http": {"paths": [
                path("/", "Prefix", "web", serde_json::json!({"number": 80}))
            ]}}]}),
        );
        let d = manage(&base_view(ing));
        let LbSource::Create(spec) = &d.load_balancer else {
            panic!("expected a create")
        };
        assert!(spec.create_request().get("SnatPro").is_none());
        assert!(d
            .listeners
            .values()
            .flat_map(|l| l.rules.values())
            .flat_map(|r| r.targets.keys())
            .all(|k| matches!(k.backend, Backend::Instance(_))));
    }
}
