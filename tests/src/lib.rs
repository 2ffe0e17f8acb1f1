//! Support for the workspace-level tests: where the workspace is, and the endpoints of the
//! services that `cargo xtask test` starts.
//!
//! A test that needs a service calls [`service`]: when the variable is missing it fails with a
//! message saying how to start the services, so that a missing service never reads as a pass.
//!
//! ```no_run
//! let endpoint = flink_eks_tests::service("FLINK_EKS_TEST_AWS_ENDPOINT");
//! assert!(endpoint.starts_with("http://"));
//! ```

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The value of a service's environment variable, or a panic naming `cargo xtask test`.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{var} is not set: this test talks to a real service. Run it through `cargo xtask test`, \
             which installs and starts the services (or `cargo xtask test --services-only` to start them \
             and print their environment)"
        ),
    }
}

/// A name unique to this process and call, for resources in shared services.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos % 0xfffff)
}
