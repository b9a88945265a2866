//! Fan-out of a big sweep to shards. How a shard is started (SCF `Invoke`, or a POST to the
//! function's own server) is the runtime's business: it comes in through [`ShardInvoker`].

use std::fmt;

use futures::future::BoxFuture;
use futures::{stream, StreamExt};
use jiff::Timestamp;

use crate::handler::{ShardFailure, ShardsOutcome};
use crate::shard::{self, ShardSpec};

/// Starts the shards of a sharded sweep, awaiting only their acceptance.
pub trait ShardInvoker: fmt::Debug + Send + Sync {
    /// Ingresses per shard: a sweep with more than this fans out.
    fn size(&self) -> usize;
    /// Starts one shard; the id under which it was accepted, or why not.
    fn invoke<'a>(&'a self, spec: &'a ShardSpec) -> BoxFuture<'a, Result<String, String>>;
}

/// Invokes every shard of a sweep over `total` Ingresses, a few at a time, without waiting for
/// any to run. A failed invocation is reported and left to the next tick; it stops no other.
pub(super) async fn fan_out(dispatcher: &dyn ShardInvoker, total: usize) -> ShardsOutcome {
    /// Invocations in flight at once (SCF Invoke allows 100/s; the client limits each action).
    const IN_FLIGHT: usize = 8;
    let count = shard::shard_count(total, dispatcher.size());
    let generation = format!(
        "{}-{:08x}",
        Timestamp::now().as_second(),
        rand::random::<u32>()
    );
    let mut out = ShardsOutcome {
        count,
        generation: generation.clone(),
        ingresses: u32::try_from(total).unwrap_or(u32::MAX),
        ..ShardsOutcome::default()
    };
    let results: Vec<(u32, Result<String, String>)> = stream::iter(0..count)
        .map(|index| {
            let generation = generation.clone();
            async move {
                let result = match ShardSpec::new(index, count, generation) {
                    Ok(spec) => dispatcher.invoke(&spec).await,
                    Err(e) => Err(e.to_string()),
                };
                (index, result)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for (index, result) in results {
        match result {
            Ok(id) => {
                tracing::info!(index, count, %generation, id = %id, "sweep shard invoked");
                out.invoked += 1;
            }
            Err(error) => {
                tracing::warn!(index, count, %generation, %error, "sweep shard not invoked");
                out.failed.push(ShardFailure { index, error });
            }
        }
    }
    out.failed.sort_by_key(|f| f.index);
    out
}
