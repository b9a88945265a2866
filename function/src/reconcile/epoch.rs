//! The create epoch of the Ingress a run holds the Lease of ([`crate::model::create_epoch`]):
//! the token its create sends, and the moves on before a CLB made with that token stops being
//! ours (deleted or disowned by a release while the Ingress lives, or found gone or disowned
//! by a replay).

use futures::future::BoxFuture;
use tokio::sync::Mutex;

use crate::cloud::clb::LoadBalancer;
use crate::cloud::create_token::TokenAdvance;
use crate::cloud::CloudError;
use crate::cluster::{ClusterClient, ClusterError, LeaseGuard};
use crate::model::create_epoch::{epoch_of, epoch_token};
use crate::model::ownership::{created_by_us, CREATED_BY_YES, TAG_CREATED_BY};
use crate::plan::{Action, CloudView, Plan};

/// One run's view of its Ingress's create epoch, moved on only through the Lease it holds.
#[derive(Debug)]
pub(super) struct Epochs {
    cluster: ClusterClient,
    guard: LeaseGuard,
    cluster_id: String,
    uid: String,
    /// The epoch as this run last read or wrote it; the lock also keeps one run's moves in
    /// order.
    current: Mutex<u64>,
}

impl Epochs {
    pub fn new(cluster: ClusterClient, guard: LeaseGuard, cluster_id: &str, uid: &str) -> Self {
        let current = epoch_of(guard.create_epoch.as_deref(), uid);
        Self {
            cluster,
            guard,
            cluster_id: cluster_id.to_string(),
            uid: uid.to_string(),
            current: Mutex::new(current),
        }
    }

    /// Puts the current epoch's token on the plan's CreateLoadBalancer (the pure plan knows
    /// only epoch 0's).
    pub async fn stamp(&self, plan: &mut Plan) {
        let token = epoch_token(&self.cluster_id, &self.uid, *self.current.lock().await);
        for action in &mut plan.actions {
            if let Action::CreateLoadBalancer { spec } = action {
                spec.client_token = token.clone();
            }
        }
    }

    /// Moves the epoch on (compare and set under the Lease); the new epoch.
    pub async fn retire(&self) -> Result<u64, ClusterError> {
        let mut current = self.current.lock().await;
        let next = self
            .cluster
            .bump_create_epoch(&self.guard, &self.uid, *current)
            .await?;
        tracing::info!(uid = %self.uid, epoch = next, "create epoch moved on");
        *current = next;
        Ok(next)
    }
}

impl TokenAdvance for Epochs {
    fn advance<'a>(
        &'a self,
        _spent: &'a str,
        lost_lb: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>> {
        Box::pin(async move {
            let next = self.retire().await.map_err(|e| {
                CloudError::TokenNotRecorded(format!("after {lost_lb} was lost: {e}"))
            })?;
            Ok(epoch_token(&self.cluster_id, &self.uid, next))
        })
    }
}

/// Whether applying `plan` to `cloud` deletes or disowns a CLB we created: its token then
/// answers a CLB that is no longer ours, so the epoch moves on first.
pub(super) fn release_retires_created(plan: &Plan, cloud: &CloudView) -> bool {
    let created = cloud
        .load_balancer
        .as_ref()
        .is_some_and(|lb| created_by_us(&lb.tags));
    created
        && plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::DeleteLoadBalancer { .. } | Action::UnTagResources { .. }
            )
        })
}

/// Whether releasing `lbs` (CLBs the Ingress no longer names) may delete or disown one we
/// created.
pub(super) fn unnamed_include_created(lbs: &[LoadBalancer]) -> bool {
    lbs.iter()
        .any(|lb| lb.tag(TAG_CREATED_BY) == Some(CREATED_BY_YES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::clb::TagInfo;
    use crate::model::lb::LbType;
    use crate::model::ownership::{
        adoption_tags, tags_for_new_lb, IngressFact, TAG_LIFECYCLE_OWNER,
    };
    use crate::plan::{plan_release, CloudLb};
    use std::collections::BTreeMap;

    fn view(tags: BTreeMap<String, String>) -> CloudView {
        CloudView {
            load_balancer: Some(CloudLb {
                id: "lb-1".into(),
                name: "n".into(),
                lb_type: LbType::Open,
                vips: vec!["1.1.1.1".into()],
                domain: None,
                status: 1,
                tags,
                listeners: Vec::new(),
                attributes: Default::default(),
            }),
        }
    }

    fn retires(tags: BTreeMap<String, String>) -> bool {
        let cloud = view(tags);
        let plan = plan_release(&cloud, IngressFact::OutOfClass, "cls-1", "uid-1").unwrap();
        assert!(!plan.is_empty());
        release_retires_created(&plan, &cloud)
    }

    #[test]
    fn releasing_a_clb_we_created_retires_its_token_and_an_adopted_one_does_not() {
        // Deleted.
        assert!(retires(tags_for_new_lb("cls-1", "uid-1")));
        // Kept for the user, but our tags go: the token would answer a CLB not ours.
        let mut kept = tags_for_new_lb("cls-1", "uid-1");
        kept.insert(TAG_LIFECYCLE_OWNER.into(), "user".into());
        assert!(retires(kept));
        // Adopted: no token ever made it.
        assert!(!retires(adoption_tags("cls-1", "uid-1")));
        // Nothing to release: nothing retired.
        let cloud = view(tags_for_new_lb("cls-1", "uid-1"));
        assert!(!release_retires_created(&Plan::default(), &cloud));
    }

    #[test]
    fn only_created_clbs_among_those_no_longer_named_retire_the_token() {
        let lb = |tags: BTreeMap<String, String>| LoadBalancer {
            load_balancer_id: "lb-1".into(),
            tags: tags.iter().map(|(k, v)| TagInfo::new(k, v)).collect(),
            ..Default::default()
        };
        assert!(!unnamed_include_created(&[]));
        assert!(!unnamed_include_created(&[lb(adoption_tags("c", "u"))]));
        assert!(unnamed_include_created(&[
            lb(adoption_tags("c", "u")),
            lb(tags_for_new_lb("c", "u"))
        ]));
    }
}
