//! The ClientToken to create with after one answered a CLB that is no longer ours to build on
//! (deleted since, or taken out of the cluster).

use futures::future::BoxFuture;

use super::apply::ApplyOptions;
use super::CloudError;
use crate::model::desired::next_client_token;

/// Moves an Ingress's create epoch on ([`crate::model::create_epoch`]) and hands back the new
/// epoch's token, once the record says so; the caller creates only with a token it got here.
pub trait TokenAdvance: Send + Sync + std::fmt::Debug {
    /// `spent` answered `lost_lb`, which is proven gone or not ours.
    fn advance<'a>(
        &'a self,
        spent: &'a str,
        lost_lb: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>>;
}

/// The next token: from the run's epoch record when it has one; without one (an apply outside
/// the Lease, as in tests), derived from the spent token and the lost CLB, so every run that
/// meets the same lost CLB still derives the same token.
pub(super) async fn next_token(
    opts: &ApplyOptions,
    spent: &str,
    lost_lb: &str,
) -> Result<String, CloudError> {
    match &opts.token_advance {
        Some(advance) => advance.advance(spent, lost_lb).await,
        None => Ok(next_client_token(spent, lost_lb)),
    }
}
