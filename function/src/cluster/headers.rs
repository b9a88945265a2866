//! A tower layer that names every Kubernetes request as ours.
//!
//! kube 5 offers static extra headers (`Config::headers`) but nothing per request, and the
//! `Audit-ID` must differ on every request (the apiserver copies it into the audit record's
//! `auditID`, which must stay unique). So this layer sits outermost on the client's service
//! stack (`ClientBuilder::with_layer`) and stamps both headers on each request.

use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::Request;
use tower::{Layer, Service};

use crate::identity;

/// The header the apiserver reads the audit id from.
pub const AUDIT_ID_HEADER: HeaderName = HeaderName::from_static("audit-id");

/// Adds `User-Agent: clb-ingress/<version>` and a fresh `Audit-ID: clb-ingress-<32 hex>`.
#[derive(Clone, Debug)]
pub struct IdentityHeadersLayer {
    user_agent: HeaderValue,
}

impl IdentityHeadersLayer {
    pub fn new() -> Self {
        // The crate version is ASCII, so this is always a valid header value; the fallback
        // keeps the prefix should that ever change.
        let user_agent = HeaderValue::from_str(&identity::user_agent()).unwrap_or_else(|_| {
            HeaderValue::from_static(identity::USER_AGENT_PREFIX.trim_end_matches('/'))
        });
        Self { user_agent }
    }
}

impl Default for IdentityHeadersLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for IdentityHeadersLayer {
    type Service = IdentityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdentityHeaders {
            inner,
            user_agent: self.user_agent.clone(),
        }
    }
}

/// The service [`IdentityHeadersLayer`] wraps around the client stack.
#[derive(Clone, Debug)]
pub struct IdentityHeaders<S> {
    inner: S,
    user_agent: HeaderValue,
}

/// A new audit id: our prefix and 128 random bits, so concurrent runs never collide.
pub fn new_audit_id() -> String {
    format!(
        "{}{:032x}",
        identity::AUDIT_ID_PREFIX,
        rand::random::<u128>()
    )
}

impl<S, B> Service<Request<B>> for IdentityHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, self.user_agent.clone());
        if let Ok(value) = HeaderValue::from_str(&new_audit_id()) {
            headers.insert(AUDIT_ID_HEADER, value);
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_request_gets_our_user_agent_and_a_distinct_audit_id() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<()>, ()>();
        let mut service = IdentityHeadersLayer::new().layer(mock);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let request = Request::builder()
                .header(USER_AGENT, "kube-rs")
                .body(())
                .unwrap();
            let call = service.ready().await.unwrap().call(request);
            let (received, send) = handle.next_request().await.unwrap();
            send.send_response(());
            call.await.unwrap();
            assert_eq!(
                received.headers().get(USER_AGENT).unwrap(),
                &identity::user_agent()
            );
            let audit = received
                .headers()
                .get(AUDIT_ID_HEADER)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(audit.starts_with(identity::AUDIT_ID_PREFIX));
            assert_eq!(audit.len(), identity::AUDIT_ID_PREFIX.len() + 32);
            seen.push(audit);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3);
    }
}
