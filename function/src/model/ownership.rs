//! DESIGN §1 as pure functions over tags and listener names: the CLB's tags are the only
//! record of ownership, and listeners on a CLB are ours only when named as TKE names them.

use std::collections::BTreeMap;

use super::problem::{codes, Problem};

/// `tke-createdBy-flag=yes`: we created the CLB, releasing the Ingress deletes it.
pub const TAG_CREATED_BY: &str = "tke-createdBy-flag";
/// Value of [`TAG_CREATED_BY`].
pub const CREATED_BY_YES: &str = "yes";
/// `tke-clusterId=<cluster>`: the cluster using the CLB.
pub const TAG_CLUSTER_ID: &str = "tke-clusterId";
/// `tke-lb-ingress-uuid=<uid>`: the one Ingress using the CLB.
pub const TAG_INGRESS_UID: &str = "tke-lb-ingress-uuid";
/// `tke-lifecycle-owner=tke|user` (newer TKE): `user` keeps a created CLB on release.
pub const TAG_LIFECYCLE_OWNER: &str = "tke-lifecycle-owner";
/// Name of every listener we create; the only listeners we ever modify or delete.
pub const OUR_LISTENER_NAME: &str = "TKE-DEDICATED-LISTENER";

/// Tags put on a CLB we create, in the CreateLoadBalancer call itself.
pub fn tags_for_new_lb(cluster_id: &str, ingress_uid: &str) -> BTreeMap<String, String> {
    let mut tags = adoption_tags(cluster_id, ingress_uid);
    tags.insert(TAG_CREATED_BY.to_string(), CREATED_BY_YES.to_string());
    tags
}

/// Tags put on an existing CLB we adopt (`existLbId`), and removed again on release.
pub fn adoption_tags(cluster_id: &str, ingress_uid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_CLUSTER_ID.to_string(), cluster_id.to_string()),
        (TAG_INGRESS_UID.to_string(), ingress_uid.to_string()),
    ])
}

/// Whether a listener (by its name) is one we created.
pub fn is_our_listener(name: &str) -> bool {
    name == OUR_LISTENER_NAME
}

/// Whether the CLB carries the created-by flag.
pub fn created_by_us(tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_CREATED_BY).map(String::as_str) == Some(CREATED_BY_YES)
}

/// Whether the CLB belongs to this Ingress of this cluster: both tags match.
pub fn is_ours(tags: &BTreeMap<String, String>, cluster_id: &str, ingress_uid: &str) -> bool {
    tags.get(TAG_CLUSTER_ID).map(String::as_str) == Some(cluster_id)
        && tags.get(TAG_INGRESS_UID).map(String::as_str) == Some(ingress_uid)
}

/// What `existLbId` adoption may do with the CLB it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// Already tagged for this Ingress: manage our listeners, leave the others alone.
    AlreadyOurs,
    /// Free: tag it with cluster and UID, then manage our listeners.
    Tag,
}

/// The existLbId checks (DESIGN §1, TKE E4018–E4021). `lb` is the CLB's tags and the
/// names of its listeners, `None` when DescribeLoadBalancers did not return it.
pub fn check_adoption(
    lb_id: &str,
    lb: Option<(&BTreeMap<String, String>, &[&str])>,
    cluster_id: &str,
    ingress_uid: &str,
) -> Result<Adoption, Problem> {
    let Some((tags, listener_names)) = lb else {
        return Err(Problem::error(
            codes::EXIST_LB_NOT_FOUND,
            format!("existLbId {lb_id}: no such CLB"),
        ));
    };
    if tags.contains_key(TAG_CREATED_BY) {
        return Err(Problem::error(
            codes::EXIST_LB_CREATED_BY_TKE,
            format!("existLbId {lb_id} was created by TKE ({TAG_CREATED_BY}); it cannot be reused"),
        ));
    }
    if let Some(uid) = tags.get(TAG_INGRESS_UID) {
        if uid != ingress_uid {
            return Err(Problem::error(
                codes::EXIST_LB_USED,
                format!("existLbId {lb_id} is used by another Ingress ({TAG_INGRESS_UID}={uid})"),
            ));
        }
    }
    if let Some(cluster) = tags.get(TAG_CLUSTER_ID) {
        if cluster != cluster_id {
            return Err(Problem::error(
                codes::EXIST_LB_USED,
                format!(
                    "existLbId {lb_id} is used by another cluster ({TAG_CLUSTER_ID}={cluster})"
                ),
            ));
        }
    }
    if is_ours(tags, cluster_id, ingress_uid) {
        return Ok(Adoption::AlreadyOurs);
    }
    // Not yet tagged for us: any listener on it was made by someone else (we tag before
    // we create listeners, and untag only after deleting ours).
    if !listener_names.is_empty() {
        return Err(Problem::error(
            codes::EXIST_LB_HAS_LISTENERS,
            format!(
                "existLbId {lb_id} already has {} listener(s) not created for this Ingress",
                listener_names.len()
            ),
        ));
    }
    Ok(Adoption::Tag)
}

/// What a fresh read of the cluster says about the Ingress a CLB is tagged for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressFact {
    /// GET returned 404.
    Gone,
    /// An Ingress of that namespace/name exists with another UID.
    OtherUid,
    /// The Ingress exists with this UID but is not of our class.
    OutOfClass,
    /// The Ingress exists, has this UID and is ours, but names another CLB (its `existLbId`
    /// was switched, added or removed): the CLB still tagged for it is no longer used.
    NoLongerNamed,
    /// The Ingress exists, has this UID and is ours: no release.
    Present,
    /// The read failed or was partial: no proof either way.
    Unknown,
}

/// What releasing a CLB does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Created by us (and not handed to the user): delete the CLB.
    DeleteLoadBalancer,
    /// Not ours to delete: delete our listeners and remove the cluster and UID tags.
    CleanUp { untag: Vec<String> },
}

/// Release needs positive proof (the Ingress is gone, has another UID or left our class)
/// AND the CLB's tags naming this cluster and Ingress UID; anything else refuses.
pub fn release_action(
    fact: IngressFact,
    tags: &BTreeMap<String, String>,
    cluster_id: &str,
    ingress_uid: &str,
) -> Result<Release, Problem> {
    match fact {
        IngressFact::Gone
        | IngressFact::OtherUid
        | IngressFact::OutOfClass
        | IngressFact::NoLongerNamed => {}
        IngressFact::Present | IngressFact::Unknown => {
            return Err(Problem::error(
                codes::NO_RELEASE_PROOF,
                format!("Ingress {ingress_uid} is not proven gone ({fact:?}); nothing released"),
            ))
        }
    }
    if !is_ours(tags, cluster_id, ingress_uid) {
        return Err(Problem::error(
            codes::NO_RELEASE_PROOF,
            format!("CLB tags do not name cluster {cluster_id} and Ingress {ingress_uid}"),
        ));
    }
    let user_keeps = tags.get(TAG_LIFECYCLE_OWNER).map(String::as_str) == Some("user");
    if created_by_us(tags) && !user_keeps {
        Ok(Release::DeleteLoadBalancer)
    } else {
        Ok(Release::CleanUp {
            untag: vec![TAG_CLUSTER_ID.to_string(), TAG_INGRESS_UID.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn new_lb_gets_all_three_tags() {
        let t = tags_for_new_lb("cls-1", "uid-1");
        assert_eq!(
            t,
            tags(&[
                (TAG_CLUSTER_ID, "cls-1"),
                (TAG_CREATED_BY, "yes"),
                (TAG_INGRESS_UID, "uid-1")
            ])
        );
    }

    #[test]
    fn ours_needs_both_cluster_and_uid_tags() {
        assert!(is_ours(
            &tags(&[(TAG_CLUSTER_ID, "c"), (TAG_INGRESS_UID, "u")]),
            "c",
            "u"
        ));
        assert!(!is_ours(&tags(&[(TAG_INGRESS_UID, "u")]), "c", "u"));
        assert!(!is_ours(
            &tags(&[(TAG_CLUSTER_ID, "other"), (TAG_INGRESS_UID, "u")]),
            "c",
            "u"
        ));
        assert!(!is_ours(
            &tags(&[(TAG_CLUSTER_ID, "c"), (TAG_INGRESS_UID, "x")]),
            "c",
            "u"
        ));
    }

    #[test]
    fn adoption_refuses_missing_lb_with_e4018() {
        let e = check_adoption("lb-1", None, "c", "u").unwrap_err();
        assert_eq!(e.code, "E4018");
    }

    #[test]
    fn adoption_refuses_tke_created_lb_with_e4019() {
        let t = tags(&[(TAG_CREATED_BY, "yes")]);
        let e = check_adoption("lb-1", Some((&t, &[])), "c", "u").unwrap_err();
        assert_eq!(e.code, "E4019");
    }

    #[test]
    fn adoption_refuses_lb_of_another_ingress_or_cluster_with_e4020() {
        let t = tags(&[(TAG_INGRESS_UID, "other")]);
        assert_eq!(
            check_adoption("lb-1", Some((&t, &[])), "c", "u")
                .unwrap_err()
                .code,
            "E4020"
        );
        let t = tags(&[(TAG_CLUSTER_ID, "other")]);
        assert_eq!(
            check_adoption("lb-1", Some((&t, &[])), "c", "u")
                .unwrap_err()
                .code,
            "E4020"
        );
    }

    #[test]
    fn adoption_refuses_untagged_lb_with_listeners_with_e4021() {
        let t = tags(&[("team", "web")]);
        let names = ["my-listener"];
        let e = check_adoption("lb-1", Some((&t, &names)), "c", "u").unwrap_err();
        assert_eq!(e.code, "E4021");
    }

    #[test]
    fn adoption_tags_a_free_lb_and_keeps_an_already_adopted_one() {
        let free = tags(&[("team", "web")]);
        assert_eq!(
            check_adoption("lb-1", Some((&free, &[])), "c", "u"),
            Ok(Adoption::Tag)
        );
        let adopted = tags(&[(TAG_CLUSTER_ID, "c"), (TAG_INGRESS_UID, "u")]);
        let names = ["foreign", OUR_LISTENER_NAME];
        assert_eq!(
            check_adoption("lb-1", Some((&adopted, &names)), "c", "u"),
            Ok(Adoption::AlreadyOurs)
        );
    }

    #[test]
    fn only_dedicated_listeners_are_ours() {
        assert!(is_our_listener("TKE-DEDICATED-LISTENER"));
        assert!(!is_our_listener("tke-dedicated-listener"));
        assert!(!is_our_listener(""));
    }

    #[test]
    fn release_deletes_created_lb_only_with_proof_and_matching_tags() {
        let created = tags_for_new_lb("c", "u");
        for fact in [
            IngressFact::Gone,
            IngressFact::OtherUid,
            IngressFact::OutOfClass,
            IngressFact::NoLongerNamed,
        ] {
            assert_eq!(
                release_action(fact, &created, "c", "u"),
                Ok(Release::DeleteLoadBalancer)
            );
        }
        for fact in [IngressFact::Present, IngressFact::Unknown] {
            assert_eq!(
                release_action(fact, &created, "c", "u").unwrap_err().code,
                codes::NO_RELEASE_PROOF
            );
        }
        assert!(release_action(IngressFact::Gone, &created, "other-cluster", "u").is_err());
        assert!(release_action(IngressFact::Gone, &created, "c", "other-uid").is_err());
    }

    #[test]
    fn release_of_adopted_lb_only_cleans_up_and_untags() {
        let adopted = adoption_tags("c", "u");
        assert_eq!(
            release_action(IngressFact::Gone, &adopted, "c", "u"),
            Ok(Release::CleanUp {
                untag: vec![TAG_CLUSTER_ID.to_string(), TAG_INGRESS_UID.to_string()]
            })
        );
    }

    #[test]
    fn release_keeps_created_lb_handed_to_user() {
        let mut t = tags_for_new_lb("c", "u");
        t.insert(TAG_LIFECYCLE_OWNER.to_string(), "user".to_string());
        assert!(matches!(
            release_action(IngressFact::Gone, &t, "c", "u"),
            Ok(Release::CleanUp { .. })
        ));
    }
}
