//! Real `kubectl` (`$KUBECTL`, else `/usr/bin/kubectl`) bound to one kube-sim through its own
//! kubeconfig and cache directory, for the tests that judge kube-sim and the product by it.

use std::path::PathBuf;

use crate::kube_sim::KubeSimHandle;

/// kubectl pointed at one kube-sim; its temporary directory goes when it is dropped.
pub struct Kubectl {
    dir: PathBuf,
}

/// What one kubectl run printed.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(sim: &KubeSimHandle) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "clb-ingress-kubectl-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory for kubectl");
        std::fs::write(dir.join("kubeconfig"), sim.kubeconfig_yaml()).expect("kubeconfig written");
        Kubectl { dir }
    }

    /// Writes `content` to a file of this kubectl's directory; returns its path.
    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).expect("manifest written");
        p.to_string_lossy().into_owned()
    }

    /// Runs kubectl with `args`, whatever its exit status.
    pub async fn run(&self, args: &[&str]) -> Out {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into());
        let out = tokio::process::Command::new(&bin)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {bin} (set KUBECTL): {e}"));
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl; panics with its stderr when it fails, else returns its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert!(o.ok, "kubectl {args:?} failed: {}", o.stderr);
        o.stdout
    }

    /// `kubectl apply -f` of YAML text (written to a file first).
    pub async fn apply_yaml(&self, yaml: &str) -> String {
        let path = self.write(&format!("manifest-{}.yaml", rand::random::<u64>()), yaml);
        self.ok(&["apply", "-f", &path]).await
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
