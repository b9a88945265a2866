//! Tencent Cloud API access: TC3 signing, the CLB and Tag clients, observe and apply.
