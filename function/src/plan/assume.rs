//! The sweep reads most CLBs without DescribeListeners (clb-batch-reads.md): their listener
//! certificates, SNI switch, keep-alive, default server and rule attributes are unknown. A
//! plan against such a read is judged only by the actions the batch read can prove needed
//! (listeners, rules, targets, weights, tags); attribute drift is found when the CLB's turn for
//! a full read comes, and a changed Ingress, Secret or TkeServiceConfig is reconciled by its
//! own trigger.

use super::Action;

impl Action {
    /// Whether the action only sets an attribute (or a redirect) that DescribeListeners alone
    /// shows.
    pub fn sets_listener_attribute(&self) -> bool {
        matches!(
            self,
            Action::ModifyListener { .. }
                | Action::ModifyDomainAttributes { .. }
                | Action::ModifyRule { .. }
                | Action::SetKeepalive { .. }
                | Action::SetDefaultServer { .. }
                | Action::ManualRewrite { .. }
        )
    }
}
