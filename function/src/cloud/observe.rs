//! The cloud side of one Ingress as the pure planner sees it ([`CloudView`]), read with the
//! steady-state budget of DESIGN §2: one DescribeLoadBalancers, one DescribeListeners (with
//! rules), one DescribeTargets (targets per rule). A failed read is an error, never an
//! empty view: an empty view would plan a second CLB or the deletion of every listener.

use std::collections::{BTreeMap, HashMap};

use super::clb::{
    Backend as ApiBackend, CertificateOutput, DescribeListenersRequest,
    DescribeLoadBalancersRequest, DescribeTargetsRequest, Filter, Listener, LoadBalancer,
    RuleOutput,
};
use super::client::CloudClient;
use super::error::CloudError;
use crate::model::lb::{Backend, Certificate, LbType, Protocol, SslMode, TargetKey};
use crate::model::lifecycle::{LbAttributes, FLAG_DELETE_PROTECT};
use crate::model::ownership::{CREATED_BY_YES, TAG_CLUSTER_ID, TAG_CREATED_BY, TAG_INGRESS_UID};
use crate::plan::{CloudLb, CloudListener, CloudRedirect, CloudRule, CloudTarget, CloudView};

/// How the CLB of an Ingress is found (DESIGN §1: nothing else is trusted as ownership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The CLB tagged `tke-lb-ingress-uuid=<uid>` and `tke-clusterId=<cluster>`.
    ByUid { cluster_id: &'a str, uid: &'a str },
    /// `kubernetes.io/ingress.existLbId`: the CLB with this id, whatever its tags (the
    /// planner's adoption checks judge them).
    ById(&'a str),
}

/// What one observation cost, for the run's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub calls: u32,
}

/// The CloudView of one Ingress: the CLB found by `lookup` with its listeners, rules and
/// targets. Reads listeners and targets only when there is a CLB (and targets only when
/// it has listeners).
pub async fn observe(
    client: &CloudClient,
    lookup: Lookup<'_>,
) -> Result<(CloudView, Reads), CloudError> {
    let mut reads = Reads::default();
    let req = match lookup {
        Lookup::ByUid { uid, .. } => DescribeLoadBalancersRequest {
            filters: vec![Filter::new(format!("tag:{TAG_INGRESS_UID}"), [uid])],
            limit: Some(super::clb::DESCRIBE_PAGE_LIMIT),
            ..Default::default()
        },
        Lookup::ById(id) => DescribeLoadBalancersRequest {
            load_balancer_ids: vec![id.to_string()],
            ..Default::default()
        },
    };
    reads.calls += 1;
    let found = client.describe_load_balancers(&req).await?;
    let lb = match lookup {
        // Another cluster's Ingress could share a UID only by accident, but its CLB is
        // never ours to touch: only a CLB carrying our cluster tag counts.
        Lookup::ByUid { cluster_id, uid } => found.load_balancer_set.into_iter().find(|lb| {
            lb.tag(TAG_CLUSTER_ID) == Some(cluster_id) && lb.tag(TAG_INGRESS_UID) == Some(uid)
        }),
        Lookup::ById(id) => found
            .load_balancer_set
            .into_iter()
            .find(|lb| lb.load_balancer_id == id),
    };
    let Some(lb) = lb else {
        return Ok((CloudView::default(), reads));
    };
    let mut cloud = cloud_lb(&lb)?;
    reads.calls += read_listeners(client, &mut cloud, true).await?;
    Ok((
        CloudView {
            load_balancer: Some(cloud),
        },
        reads,
    ))
}

/// Every CLB tagged for the Ingress `uid` of our cluster, by one DescribeLoadBalancers
/// filtered on the UID tag (the cluster tag checked here: the filter is the API's).
pub async fn tagged_for(
    client: &CloudClient,
    cluster_id: &str,
    uid: &str,
) -> Result<Vec<LoadBalancer>, CloudError> {
    Ok(client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new(format!("tag:{TAG_INGRESS_UID}"), [uid])],
            limit: Some(super::clb::DESCRIBE_PAGE_LIMIT),
            ..Default::default()
        })
        .await?
        .load_balancer_set
        .into_iter()
        .filter(|lb| {
            lb.tag(TAG_CLUSTER_ID) == Some(cluster_id) && lb.tag(TAG_INGRESS_UID) == Some(uid)
        })
        .collect())
}

/// What [`observe_named`] found for an Ingress of ours.
#[derive(Clone, Debug, Default)]
pub struct Named {
    /// The CLB the Ingress names, with listeners, rules and targets.
    pub cloud: CloudView,
    /// CLBs still tagged for the Ingress that it no longer names (its `existLbId` was
    /// switched, added or removed): released once the named one serves.
    pub unnamed: Vec<LoadBalancer>,
    pub reads: Reads,
}

/// The CLB an Ingress of ours names, `exist_lb_id` or (without it) the CLB we created for
/// it, and the others tagged for it. One search by our UID tag finds them all (the steady
/// state costs what a lookup by id did); a named CLB not tagged for the Ingress yet (about
/// to be adopted, or refused) is then read by id, whatever its tags, for the planner to
/// judge. With `existLbId`, every other CLB tagged for the Ingress is no longer named;
/// without it, only those we did not create (an adopted one whose annotation was removed):
/// two created CLBs for one UID are not ours to choose between here.
///
/// The named CLB lives in `client`'s region (`cross-region-id`); `other_regions` are searched
/// by the UID tag too, and what is tagged for the Ingress there is no longer named (its
/// region changed).
pub async fn observe_named(
    client: &CloudClient,
    other_regions: &[String],
    cluster_id: &str,
    uid: &str,
    exist_lb_id: Option<&str>,
) -> Result<Named, CloudError> {
    let mut reads = Reads { calls: 1 };
    let mut tagged = tagged_for(client, cluster_id, uid).await?;
    for region in other_regions {
        reads.calls += 1;
        tagged.extend(tagged_for(&client.in_region(region), cluster_id, uid).await?);
    }
    let here = |lb: &LoadBalancer| lb.region == client.region();
    let created = |lb: &LoadBalancer| lb.tag(TAG_CREATED_BY) == Some(CREATED_BY_YES);
    let is_named = |lb: &LoadBalancer| {
        here(lb)
            && match exist_lb_id {
                Some(id) => lb.load_balancer_id == id,
                None => created(lb),
            }
    };
    let mut named = tagged.iter().find(|lb| is_named(lb)).cloned();
    if let (None, Some(id)) = (&named, exist_lb_id) {
        reads.calls += 1;
        named = read_load_balancer(client, id).await?;
    }
    let named_id = named.as_ref().map(|lb| lb.load_balancer_id.clone());
    let unnamed = tagged
        .into_iter()
        .filter(|lb| Some(&lb.load_balancer_id) != named_id.as_ref())
        .filter(|lb| exist_lb_id.is_some() || !created(lb) || !here(lb))
        .collect();
    let Some(lb) = named else {
        return Ok(Named {
            unnamed,
            reads,
            ..Named::default()
        });
    };
    let mut cloud = cloud_lb(&lb)?;
    reads.calls += read_listeners(client, &mut cloud, true).await?;
    Ok(Named {
        cloud: CloudView {
            load_balancer: Some(cloud),
        },
        unnamed,
        reads,
    })
}

/// One CLB read by id now (one DescribeLoadBalancers), `None` when the read does not show it.
pub async fn read_load_balancer(
    client: &CloudClient,
    id: &str,
) -> Result<Option<LoadBalancer>, CloudError> {
    let found = client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            load_balancer_ids: vec![id.to_string()],
            ..Default::default()
        })
        .await?;
    Ok(found
        .load_balancer_set
        .into_iter()
        .find(|lb| lb.load_balancer_id == id))
}

/// A CLB as DescribeLoadBalancers shows it, without listeners yet.
pub fn cloud_lb(lb: &LoadBalancer) -> Result<CloudLb, CloudError> {
    let lb_type = match lb.load_balancer_type.as_str() {
        "OPEN" => LbType::Open,
        "INTERNAL" => LbType::Internal,
        other => {
            return Err(unexpected(
                "DescribeLoadBalancers",
                format!("CLB {} has LoadBalancerType {other:?}", lb.load_balancer_id),
            ))
        }
    };
    let domain = [&lb.load_balancer_domain, &lb.domain]
        .into_iter()
        .find(|d| !d.is_empty())
        .cloned();
    Ok(CloudLb {
        id: lb.load_balancer_id.clone(),
        name: lb.load_balancer_name.clone(),
        lb_type,
        vips: lb
            .load_balancer_vips
            .iter()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect(),
        domain,
        status: lb.status.unwrap_or(0).max(0) as u64,
        tags: lb
            .tags
            .iter()
            .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
            .collect(),
        listeners: Vec::new(),
        attributes: LbAttributes {
            delete_protect: lb.attribute_flags.iter().any(|f| f == FLAG_DELETE_PROTECT),
            pass_to_target: lb.load_balancer_pass_to_target.unwrap_or(false),
            security_groups: lb.secure_groups.clone(),
        },
    })
}

/// Fills `lb.listeners` (with their rules) by one DescribeListeners and, when `targets` is
/// asked for and there are listeners, their targets by one DescribeTargets. Returns the
/// number of calls made. (Releasing needs only the listener names, not the targets.)
pub async fn read_listeners(
    client: &CloudClient,
    lb: &mut CloudLb,
    targets: bool,
) -> Result<u32, CloudError> {
    let listeners = client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: lb.id.clone(),
            ..Default::default()
        })
        .await?
        .listeners;
    if listeners.is_empty() || !targets {
        let mut none = HashMap::new();
        lb.listeners = listeners
            .iter()
            .filter_map(|l| cloud_listener(l, &mut none))
            .collect();
        return Ok(1);
    }
    let targets = client
        .describe_targets(&DescribeTargetsRequest {
            load_balancer_id: lb.id.clone(),
            ..Default::default()
        })
        .await?;
    // (listener id, location id) → targets.
    let mut bound: HashMap<(String, String), Vec<CloudTarget>> = HashMap::new();
    for l in targets.listeners {
        for r in l.rules {
            let entry = bound
                .entry((l.listener_id.clone(), r.location_id.clone()))
                .or_default();
            entry.extend(r.targets.iter().filter_map(cloud_target));
        }
    }
    lb.listeners = listeners
        .iter()
        .filter_map(|l| cloud_listener(l, &mut bound))
        .collect();
    Ok(2)
}

/// A listener of a protocol this reconciler does not know (or a port out of range) is left
/// out: it can never be ours (we only create HTTP/HTTPS), and leaving it out only hides it
/// from the planner's port-conflict check, which the API itself enforces on create.
fn cloud_listener(
    l: &Listener,
    bound: &mut HashMap<(String, String), Vec<CloudTarget>>,
) -> Option<CloudListener> {
    let protocol = Protocol::from_api(&l.protocol)?;
    let port = u16::try_from(l.port).ok()?;
    let rules = l
        .rules
        .iter()
        .map(|r| CloudRule {
            location_id: r.location_id.clone(),
            domain: r.domain.clone(),
            url: r.url.clone(),
            certificate: r.certificate.as_ref().and_then(certificate),
            default_server: r.default_server.unwrap_or(false),
            attributes: super::attributes::observed(r),
            redirect: redirect(r),
            targets: bound
                .remove(&(l.listener_id.clone(), r.location_id.clone()))
                .unwrap_or_default(),
        })
        .collect();
    Some(CloudListener {
        id: l.listener_id.clone(),
        protocol,
        port,
        name: l.listener_name.clone(),
        certificate: l.certificate.as_ref().and_then(certificate),
        sni: l.sni_switch == Some(1),
        keepalive: l.keepalive_enable.map(|k| k == 1),
        rules,
    })
}

/// `RewriteTarget` names a target rule only when the rule redirects.
fn redirect(r: &RuleOutput) -> Option<CloudRedirect> {
    let t = r.rewrite_target.as_ref()?;
    if t.target_location_id.is_empty() {
        return None;
    }
    Some(CloudRedirect {
        target_listener_id: t.target_listener_id.clone(),
        target_location_id: t.target_location_id.clone(),
        code: t.rewrite_code.and_then(|c| u16::try_from(c).ok()),
        take_url: t.take_url.unwrap_or(false),
    })
}

fn certificate(c: &CertificateOutput) -> Option<Certificate> {
    if c.cert_id.is_empty() {
        return None;
    }
    let ssl_mode = if c.ssl_mode.eq_ignore_ascii_case("MUTUAL") {
        SslMode::Mutual
    } else {
        SslMode::Unidirectional
    };
    Some(Certificate {
        ssl_mode,
        cert_id: c.cert_id.clone(),
        ca_cert_id: Some(c.cert_ca_id.clone()).filter(|id| !id.is_empty()),
    })
}

/// A bound target by its natural key: a CVM instance, or an ENI IP (`Type` ENI, or no
/// instance id). A backend showing neither cannot be matched and is left out.
fn cloud_target(b: &ApiBackend) -> Option<CloudTarget> {
    let port = u16::try_from(b.port).ok()?;
    let backend = if !b.instance_id.is_empty() && b.kind != "ENI" {
        Backend::Instance(b.instance_id.clone())
    } else {
        Backend::EniIp(b.private_ip_addresses.first()?.clone())
    };
    Some(CloudTarget {
        key: TargetKey { backend, port },
        weight: b
            .weight
            .unwrap_or(i64::from(crate::model::lb::DEFAULT_WEIGHT))
            .clamp(0, 100) as u16,
    })
}

/// Every CLB tagged with our cluster (paged; all-or-nothing), keyed by id.
pub async fn cluster_load_balancers(
    client: &CloudClient,
    cluster_id: &str,
) -> Result<BTreeMap<String, LoadBalancer>, CloudError> {
    let all = client
        .describe_all_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new(format!("tag:{TAG_CLUSTER_ID}"), [cluster_id])],
            ..Default::default()
        })
        .await?;
    Ok(all
        .into_iter()
        // The filter is the API's; the check is ours (never act on what the filter let by).
        .filter(|lb| lb.tag(TAG_CLUSTER_ID) == Some(cluster_id))
        .map(|lb| (lb.load_balancer_id.clone(), lb))
        .collect())
}

fn unexpected(action: &str, message: String) -> CloudError {
    CloudError::Unexpected {
        action: action.into(),
        message,
    }
}
