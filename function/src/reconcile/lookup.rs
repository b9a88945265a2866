//! What the trigger handler asks of the engine: which Ingresses a change touches, and which
//! belong to a shard.

use futures::future::BoxFuture;

use super::Reconciler;
use crate::handler::{IngressKey, IngressLookup, IngressSummary, LookupError};
use crate::model::refs::ingress_refs;
use crate::shard::ShardSpec;

impl IngressLookup for Reconciler {
    fn shard_members<'a>(
        &'a self,
        spec: &'a ShardSpec,
    ) -> BoxFuture<'a, Result<Vec<IngressKey>, LookupError>> {
        Box::pin(self.shard_keys(spec))
    }

    /// The Ingresses of the namespace (or the cluster), from the apiserver's cache: the
    /// handler only maps changes to Ingresses, and a missed one is caught by its own trigger
    /// or the sweep.
    fn ingresses(
        &self,
        namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
        Box::pin(async move {
            let all = self
                .cluster
                .list_ingresses_cached(namespace.as_deref())
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            Ok(all
                .iter()
                .filter_map(|i| {
                    let refs = ingress_refs(i);
                    Some(IngressSummary {
                        key: IngressKey::new(
                            i.metadata.namespace.clone()?,
                            i.metadata.name.clone()?,
                        ),
                        services: refs.services,
                        tls_secrets: refs.tls_secrets,
                        node_port: !refs.direct_access,
                    })
                })
                .collect())
        })
    }
}
