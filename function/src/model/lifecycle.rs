//! Lifecycle and safety annotations (tke-annotations.md §4): `mode: skip`, `loadbalance-retain`,
//! `deletion-protection`, `security-groups`, `pass-to-target` — what they ask of the CLB, and
//! what releasing a CLB does under them. Pure.
//!
//! A malformed value is a Warning and changes nothing (the attribute is left as it is), except
//! `mode`: a value that is not `skip` refuses the whole Ingress, because a user who wrote
//! `mode: Skip` asked us to keep our hands off and a refusal is the only safe reading.

use std::collections::BTreeMap;

use serde::Serialize;

use super::annotations::{is_id, parse_bool};
use super::ownership::{self, IngressFact, Release, TAG_LIFECYCLE_OWNER};
use super::problem::{codes, Problem};

pub const MODE: &str = "ingress.cloud.tencent.com/mode";
/// The one `mode` TKE documents (CN56112, v2.10.0+).
pub const MODE_SKIP: &str = "skip";
pub const LOADBALANCE_RETAIN: &str = "ingress.cloud.tencent.com/loadbalance-retain";
pub const DELETION_PROTECTION: &str = "ingress.cloud.tencent.com/deletion-protection";
pub const SECURITY_GROUPS: &str = "ingress.cloud.tencent.com/security-groups";
pub const PASS_TO_TARGET: &str = "ingress.cloud.tencent.com/pass-to-target";

/// Most security groups the annotation may name (INTL annotation page; the API takes 50).
pub const MAX_SECURITY_GROUPS: usize = 5;

/// The mark a `mode: skip` Ingress leaves on its CLB, so that a release — which runs when
/// the Ingress (and its annotation) is gone — still knows to keep listeners and targets.
/// ASSUMPTION (tke-annotations.md §4 says what skip does on delete, not how TKE remembers
/// it; TKE keeps the deleted object in its informer cache, a stateless function has only
/// the CLB's tags): the tag key and value are ours.
pub const TAG_SKIP: &str = "tke-ingress-mode";
/// Value of [`TAG_SKIP`].
pub const TAG_SKIP_VALUE: &str = MODE_SKIP;

/// `tke-lifecycle-owner` values (CN45685): `user` keeps a created CLB on release.
pub const OWNER_USER: &str = "user";
pub const OWNER_TKE: &str = "tke";

/// `AttributeFlags` entry of a deletion-protected CLB [SDK].
pub const FLAG_DELETE_PROTECT: &str = "DeleteProtect";

/// Reference annotations not implemented here: reported as `UnsupportedAnnotation` by
/// [`super::annotations::parse`].
/// `modification-protection`: the CLB API only reads operation protection
/// (`DescribeLBOperateProtect`), no call sets it (tke-annotations.md §4: "TKE mapping
/// unknown"); `mix-target-prefer`'s meaning is only third-party documented; `lb-rs-weight`'s format
/// is UNCONFIRMED and keyed by StatefulSet Pod indexes this reconciler does not read;
/// `enable-grace-deletion`'s meaning is UNCONFIRMED (the graceful-shutdown switches are in
/// [`super::graceful`]).
pub const UNSUPPORTED: [&str; 4] = [
    "ingress.cloud.tencent.com/modification-protection",
    "ingress.cloud.tencent.com/lb-rs-weight",
    "ingress.cloud.tencent.com/mix-target-prefer",
    "ingress.cloud.tencent.com/enable-grace-deletion",
];

/// What the lifecycle annotations ask for. `None` = not asked: the CLB is left as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    /// `mode: skip`: no write for this Ingress; its CLB is kept on delete.
    pub skip: bool,
    /// `loadbalance-retain`: keep a created CLB on delete (`tke-lifecycle-owner=user`).
    pub retain: Option<bool>,
    pub attributes: WantedAttributes,
}

/// CLB attributes an Ingress may ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WantedAttributes {
    pub delete_protect: Option<bool>,
    pub pass_to_target: Option<bool>,
    /// In order (the API keeps the order); empty unbinds all.
    pub security_groups: Option<Vec<String>>,
}

/// The same attributes as DescribeLoadBalancers shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LbAttributes {
    pub delete_protect: bool,
    pub pass_to_target: bool,
    pub security_groups: Vec<String>,
}

impl LbAttributes {
    /// What a CLB looks like right after CreateLoadBalancer without these fields.
    /// ASSUMPTION (SDK: DeleteProtect and LoadBalancerPassToTarget default to false, no
    /// security group is bound unless asked): a plan for a new CLB diffs against this.
    pub fn new_clb() -> Self {
        LbAttributes::default()
    }
}

/// The attribute writes that bring `have` to `wanted`: only what is asked and differs.
pub fn attribute_changes(wanted: &WantedAttributes, have: &LbAttributes) -> WantedAttributes {
    WantedAttributes {
        delete_protect: wanted.delete_protect.filter(|w| *w != have.delete_protect),
        pass_to_target: wanted.pass_to_target.filter(|w| *w != have.pass_to_target),
        security_groups: wanted
            .security_groups
            .clone()
            .filter(|w| *w != have.security_groups),
    }
}

/// Tags to set and keys to remove on a CLB this Ingress manages: the lifecycle owner asked
/// by `loadbalance-retain` (on CLBs we created only; an adopted CLB is never deleted) and
/// the skip mark of an Ingress no longer in `mode: skip`.
pub fn tag_changes(
    lc: &Lifecycle,
    tags: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut set = BTreeMap::new();
    if let Some(owner) = retain_owner(lc.retain) {
        let current = tags.get(TAG_LIFECYCLE_OWNER).map(String::as_str);
        let keeps_already = owner == OWNER_TKE && current.is_none();
        if ownership::created_by_us(tags) && current != Some(owner) && !keeps_already {
            set.insert(TAG_LIFECYCLE_OWNER.to_string(), owner.to_string());
        }
    }
    let unset = if tags.contains_key(TAG_SKIP) {
        vec![TAG_SKIP.to_string()]
    } else {
        Vec::new()
    };
    (set, unset)
}

/// The `tke-lifecycle-owner` value `loadbalance-retain` asks for.
fn retain_owner(retain: Option<bool>) -> Option<&'static str> {
    retain.map(|r| if r { OWNER_USER } else { OWNER_TKE })
}

/// Tags added to the CreateLoadBalancer tags of a new CLB (never an untagged moment).
pub fn create_tags(lc: &Lifecycle) -> BTreeMap<String, String> {
    match lc.retain {
        Some(true) => BTreeMap::from([(TAG_LIFECYCLE_OWNER.to_string(), OWNER_USER.to_string())]),
        _ => BTreeMap::new(),
    }
}

/// Whether the CLB carries the mark of a `mode: skip` Ingress.
pub fn skip_marked(tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_SKIP).map(String::as_str) == Some(TAG_SKIP_VALUE)
}

/// What releasing a CLB does once the lifecycle marks are taken into account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Releasing {
    /// Ours to delete: DeleteLoadBalancer.
    Delete,
    /// Delete our listeners and remove the cluster and UID tags; the CLB stays (adopted,
    /// `tke-lifecycle-owner=user` / `loadbalance-retain`, or deletion-protected — then
    /// `kept` says why, for the report).
    CleanUp {
        untag: Vec<String>,
        kept: Option<Problem>,
    },
    /// `mode: skip`: the CLB, its listeners and targets stay; only our claim (cluster and
    /// UID tags) goes, so no later sweep takes it for an orphan again.
    Untag { untag: Vec<String>, kept: Problem },
}

/// [`ownership::release_action`] (positive proof and matching tags, unchanged) with the
/// lifecycle marks: a skip-marked CLB keeps everything, a deletion-protected one is never
/// deleted (nor force-deleted).
pub fn release_action(
    fact: IngressFact,
    tags: &BTreeMap<String, String>,
    attributes: &LbAttributes,
    cluster_id: &str,
    ingress_uid: &str,
) -> Result<Releasing, Problem> {
    let release = ownership::release_action(fact, tags, cluster_id, ingress_uid)?;
    let untag = vec![
        ownership::TAG_CLUSTER_ID.to_string(),
        ownership::TAG_INGRESS_UID.to_string(),
    ];
    if skip_marked(tags) {
        return Ok(Releasing::Untag {
            untag,
            kept: Problem::warning(
                codes::LB_KEPT,
                "the Ingress was in mode: skip; its CLB, listeners and targets are kept",
            ),
        });
    }
    Ok(match release {
        Release::DeleteLoadBalancer if attributes.delete_protect => Releasing::CleanUp {
            untag,
            kept: Some(Problem::warning(
                codes::LB_KEPT,
                "the CLB has deletion protection; it is kept (our listeners and tags removed)",
            )),
        },
        Release::DeleteLoadBalancer => Releasing::Delete,
        Release::CleanUp { untag } => Releasing::CleanUp { untag, kept: None },
    })
}

/// Parses the lifecycle annotations. `mode` other than `skip` is an Error (refuses the
/// Ingress); every other malformed value is a Warning and leaves that attribute alone.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Lifecycle, Vec<Problem>) {
    let mut out = Lifecycle::default();
    let mut problems = Vec::new();
    let get = |k: &str| annotations.get(k).map(|v| v.trim());
    if let Some(v) = get(MODE).filter(|v| !v.is_empty()) {
        if v == MODE_SKIP {
            out.skip = true;
        } else {
            problems.push(Problem::error(
                codes::INVALID_ANNOTATION,
                format!("{MODE}: {v:?} is not a mode (only {MODE_SKIP:?}); nothing is changed"),
            ));
        }
    }
    let mut flag = |key: &str| match get(key).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let b = parse_bool(v);
            if b.is_none() {
                problems.push(Problem::warning(
                    codes::INVALID_ANNOTATION,
                    format!("{key}: {v:?} is not a bool; ignored"),
                ));
            }
            b
        }
    };
    out.retain = flag(LOADBALANCE_RETAIN);
    out.attributes.delete_protect = flag(DELETION_PROTECTION);
    out.attributes.pass_to_target = flag(PASS_TO_TARGET);
    if let Some(v) = get(SECURITY_GROUPS) {
        match parse_security_groups(v) {
            Ok(groups) => out.attributes.security_groups = Some(groups),
            Err(why) => problems.push(Problem::warning(
                codes::INVALID_ANNOTATION,
                format!("{SECURITY_GROUPS}: {why}; security groups left as they are"),
            )),
        }
    }
    (out, problems)
}

/// `"sg-a,sg-b"` → the groups in order, duplicates dropped; `""` → none (unbind all).
fn parse_security_groups(v: &str) -> Result<Vec<String>, String> {
    let mut groups: Vec<String> = Vec::new();
    for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !is_id(g, "sg") {
            return Err(format!("{g:?} is not a security group id (sg-xxxxxxxx)"));
        }
        if !groups.iter().any(|have| have == g) {
            groups.push(g.to_string());
        }
    }
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(format!(
            "{} groups, at most {MAX_SECURITY_GROUPS}",
            groups.len()
        ));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ownership::{adoption_tags, tags_for_new_lb};
    use crate::model::Severity;

    fn parse_one(k: &str, v: &str) -> (Lifecycle, Vec<Problem>) {
        parse(&[(k.to_string(), v.to_string())].into())
    }

    #[test]
    fn each_annotation_parses_to_what_it_asks() {
        let a: BTreeMap<String, String> = [
            (MODE, " skip "),
            (LOADBALANCE_RETAIN, "true"),
            (DELETION_PROTECTION, "true"),
            (PASS_TO_TARGET, "false"),
            (SECURITY_GROUPS, "sg-a1, sg-b2,sg-a1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (lc, problems) = parse(&a);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(lc.skip);
        assert_eq!(lc.retain, Some(true));
        assert_eq!(lc.attributes.delete_protect, Some(true));
        assert_eq!(lc.attributes.pass_to_target, Some(false));
        assert_eq!(
            lc.attributes.security_groups,
            Some(vec!["sg-a1".to_string(), "sg-b2".to_string()])
        );
    }

    #[test]
    fn absent_annotations_ask_for_nothing() {
        let (lc, problems) = parse(&BTreeMap::new());
        assert_eq!(lc, Lifecycle::default());
        assert!(problems.is_empty());
    }

    #[test]
    fn empty_security_groups_unbind_all() {
        let (lc, problems) = parse_one(SECURITY_GROUPS, "");
        assert!(problems.is_empty());
        assert_eq!(lc.attributes.security_groups, Some(vec![]));
    }

    #[test]
    fn malformed_values_warn_and_ask_for_nothing() {
        for (k, v) in [
            (LOADBALANCE_RETAIN, "yes"),
            (DELETION_PROTECTION, "on"),
            (PASS_TO_TARGET, "2"),
            (SECURITY_GROUPS, "default"),
            (SECURITY_GROUPS, "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6"),
        ] {
            let (lc, problems) = parse_one(k, v);
            assert_eq!(lc, Lifecycle::default(), "{k}={v}");
            assert_eq!(problems.len(), 1, "{k}={v}");
            assert_eq!(problems[0].code, codes::INVALID_ANNOTATION, "{k}={v}");
            assert_eq!(problems[0].severity, Severity::Warning, "{k}={v}");
        }
    }

    #[test]
    fn a_mode_other_than_skip_refuses_the_ingress() {
        let (lc, problems) = parse_one(MODE, "Skip");
        assert!(!lc.skip);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].severity, Severity::Error);
    }

    #[test]
    fn unimplemented_reference_annotations_are_reported() {
        for key in UNSUPPORTED {
            let (_, problems) =
                super::super::annotations::parse(&[(key.into(), "true".into())].into());
            assert_eq!(problems.len(), 1, "{key}");
            assert_eq!(problems[0].code, codes::UNSUPPORTED_ANNOTATION, "{key}");
        }
    }

    #[test]
    fn only_asked_attributes_that_differ_change() {
        let have = LbAttributes {
            delete_protect: true,
            pass_to_target: false,
            security_groups: vec!["sg-1".into()],
        };
        let same = WantedAttributes {
            delete_protect: Some(true),
            pass_to_target: None,
            security_groups: Some(vec!["sg-1".into()]),
        };
        assert_eq!(attribute_changes(&same, &have), WantedAttributes::default());
        let other = WantedAttributes {
            delete_protect: Some(false),
            pass_to_target: Some(true),
            security_groups: Some(vec![]),
        };
        assert_eq!(attribute_changes(&other, &have), other);
    }

    #[test]
    fn retain_hands_a_created_clb_to_the_user_and_back() {
        let retain = Lifecycle {
            retain: Some(true),
            ..Lifecycle::default()
        };
        let mut tags = tags_for_new_lb("c", "u");
        let (set, unset) = tag_changes(&retain, &tags);
        assert_eq!(set[TAG_LIFECYCLE_OWNER], OWNER_USER);
        assert!(unset.is_empty());
        tags.insert(TAG_LIFECYCLE_OWNER.into(), OWNER_USER.into());
        assert!(tag_changes(&retain, &tags).0.is_empty());
        let released = Lifecycle {
            retain: Some(false),
            ..Lifecycle::default()
        };
        assert_eq!(
            tag_changes(&released, &tags).0[TAG_LIFECYCLE_OWNER],
            OWNER_TKE
        );
        // Without the annotation a console-set owner is the user's business.
        assert!(tag_changes(&Lifecycle::default(), &tags).0.is_empty());
        // An adopted CLB is never deleted: no owner tag needed.
        assert!(tag_changes(&retain, &adoption_tags("c", "u")).0.is_empty());
    }

    #[test]
    fn leaving_skip_mode_removes_the_mark() {
        let mut tags = tags_for_new_lb("c", "u");
        tags.insert(TAG_SKIP.into(), TAG_SKIP_VALUE.into());
        let (_, unset) = tag_changes(&Lifecycle::default(), &tags);
        assert_eq!(unset, vec![TAG_SKIP.to_string()]);
    }

    #[test]
    fn release_keeps_skip_marked_and_protected_clbs() {
        let mut tags = tags_for_new_lb("c", "u");
        let plain = LbAttributes::default();
        assert_eq!(
            release_action(IngressFact::Gone, &tags, &plain, "c", "u"),
            Ok(Releasing::Delete)
        );
        let protected = LbAttributes {
            delete_protect: true,
            ..LbAttributes::default()
        };
        assert!(matches!(
            release_action(IngressFact::Gone, &tags, &protected, "c", "u"),
            Ok(Releasing::CleanUp { kept: Some(_), .. })
        ));
        tags.insert(TAG_SKIP.into(), TAG_SKIP_VALUE.into());
        assert!(matches!(
            release_action(IngressFact::Gone, &tags, &plain, "c", "u"),
            Ok(Releasing::Untag { .. })
        ));
        // Proof is still needed, whatever the marks say.
        assert!(release_action(IngressFact::Unknown, &tags, &plain, "c", "u").is_err());
    }
}
