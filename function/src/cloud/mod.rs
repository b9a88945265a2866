//! Tencent Cloud API access: TC3 signing, the CLB and Tag clients, observe and apply.
//!
//! One call path ([`CloudClient::call`]) signs, rate-limits, retries what is transient and
//! counts what it sends ([`CallStats`]); `clb` and `tag` add typed requests and one method
//! per action on top. Async CLB writes wait for their task before returning.

pub mod actions;
pub mod apply;
pub mod attributes;
pub mod clb;
pub mod client;
pub mod config;
pub mod create_token;
pub mod error;
pub mod fleet;
pub mod observe;
pub mod quota;
pub mod ratelimit;
pub mod retry;
pub mod rewrite;
pub mod scf;
pub mod sign;
pub mod ssl;
pub mod stats;
pub mod tag;

pub use client::{CloudClient, TaskStatus, CLB_SERVICE, CLB_VERSION, TAG_SERVICE, TAG_VERSION};
pub use config::{CloudConfig, CloudConfigBuilder, Credentials};
pub use error::CloudError;
pub use retry::RetryPolicy;
pub use stats::{ActionCounts, CallStats};
