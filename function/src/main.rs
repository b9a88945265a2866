fn main() -> anyhow::Result<()> {
    // The process-level rustls provider must exist before kube or reqwest builds a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(())
}
