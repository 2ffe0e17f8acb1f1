//! What a run remembers for the next: the identity of each EKS cluster it planned for (its
//! ARN and OIDC issuer, which never change while the cluster exists), so that the next plan
//! need not ask EKS first. irsa decides how far a remembered identity is trusted (it only
//! confirms: see [`flink_eks_irsa::Irsa::with_known_cluster`]); this module only keeps it.
//!
//! One JSON file per cluster, `clusters/REGION-NAME.json`, in the cache folder:
//! `FLINK_EKS_CACHE_DIR`, else `$XDG_CACHE_HOME/flink-eks`, else `$HOME/.cache/flink-eks`.
//! An entry is used only when everything that picks the cluster from this machine is the
//! same as when it was written: the region, the cluster's name, the Kubernetes API server
//! the kubeconfig points at (a cluster made again under its name gets another endpoint) and
//! the AWS endpoint override. The cache is a convenience: a file that cannot be read or
//! written is a miss, logged with `-v`, never an error.

use std::path::{Path, PathBuf};

use flink_eks_irsa::ClusterIdentity;
use serde::{Deserialize, Serialize};

/// The variable that names the cache folder.
pub const CACHE_DIR_ENV: &str = "FLINK_EKS_CACHE_DIR";

/// Everything that picks the cluster from this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClusterKey {
    pub(crate) region: String,
    pub(crate) cluster: String,
    /// The API server the kubeconfig points at.
    pub(crate) api_server: String,
    /// `AWS_ENDPOINT_URL` or the profile's `endpoint_url`, when set.
    pub(crate) aws_endpoint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: ClusterKey,
    identity: ClusterIdentity,
}

/// The cache folder from the environment's variables (`var`): see the module's text. `None`
/// when none of them is set.
pub(crate) fn cache_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set(CACHE_DIR_ENV)
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("flink-eks")))
        .or_else(|| set("HOME").map(|d| d.join(".cache").join("flink-eks")))
}

/// The remembered identities in one cache folder.
#[derive(Debug, Clone)]
pub(crate) struct ClusterCache {
    dir: PathBuf,
}

impl ClusterCache {
    pub(crate) fn new(dir: PathBuf) -> ClusterCache {
        ClusterCache { dir }
    }

    fn path(&self, key: &ClusterKey) -> PathBuf {
        self.dir
            .join("clusters")
            .join(format!("{}-{}.json", key.region, key.cluster))
    }

    /// The identity remembered for `key`, if one was, under the same key.
    pub(crate) fn load(&self, key: &ClusterKey) -> Option<ClusterIdentity> {
        let path = self.path(key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::info!("cache {}: {err}; asking EKS", path.display());
                return None;
            }
        };
        match serde_json::from_str::<Entry>(&text) {
            Ok(entry) if entry.key == *key => {
                tracing::info!("cluster {} remembered from {}", key.cluster, path.display());
                Some(entry.identity)
            }
            Ok(_) => {
                tracing::info!(
                    "cache {}: another API server or endpoint; asking EKS",
                    path.display()
                );
                None
            }
            Err(err) => {
                tracing::info!("cache {}: {err}; asking EKS", path.display());
                None
            }
        }
    }

    /// Remembers `identity` under `key`: written whole to a file of its own, then renamed, so
    /// that a reader never sees half of it.
    pub(crate) fn store(&self, key: &ClusterKey, identity: &ClusterIdentity) {
        let path = self.path(key);
        let entry = Entry {
            key: key.clone(),
            identity: identity.clone(),
        };
        if let Err(err) = write_whole(&path, &entry) {
            tracing::info!("cache {}: cannot write: {err}", path.display());
        }
    }
}

fn write_whole(path: &Path, entry: &Entry) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&partial, serde_json::to_vec_pretty(entry)?)?;
    std::fs::rename(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey {
            region: "eu-west-1".into(),
            cluster: "flink-demo".into(),
            api_server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com/".into(),
            aws_endpoint: None,
        }
    }

    fn identity() -> ClusterIdentity {
        ClusterIdentity {
            name: "flink-demo".into(),
            region: "eu-west-1".into(),
            arn: "arn:aws:eks:eu-west-1:123456789012:cluster/flink-demo".into(),
            issuer: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
        }
    }

    #[test]
    fn the_folder_is_the_tools_variable_then_xdg_then_home() {
        fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        assert_eq!(
            cache_dir(env(&[
                (CACHE_DIR_ENV, "/c"),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            cache_dir(env(&[
                (CACHE_DIR_ENV, ""),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ])),
            Some(PathBuf::from("/x/flink-eks"))
        );
        assert_eq!(
            cache_dir(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/flink-eks"))
        );
        assert_eq!(cache_dir(env(&[])), None);
    }

    #[test]
    fn an_identity_is_found_again_only_under_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ClusterCache::new(dir.path().to_owned());
        assert_eq!(cache.load(&key()), None);
        cache.store(&key(), &identity());
        assert_eq!(cache.load(&key()), Some(identity()));
        assert!(
            dir.path()
                .join("clusters/eu-west-1-flink-demo.json")
                .is_file()
        );

        let recreated = ClusterKey {
            api_server: "https://DEF.gr7.eu-west-1.eks.amazonaws.com/".into(),
            ..key()
        };
        assert_eq!(cache.load(&recreated), None, "another API server");
        let emulated = ClusterKey {
            aws_endpoint: Some("http://127.0.0.1:5000".into()),
            ..key()
        };
        assert_eq!(cache.load(&emulated), None, "another AWS endpoint");
    }

    #[test]
    fn an_unreadable_or_unwritable_cache_is_a_miss_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ClusterCache::new(dir.path().to_owned());
        std::fs::create_dir_all(dir.path().join("clusters")).unwrap();
        std::fs::write(
            dir.path().join("clusters/eu-west-1-flink-demo.json"),
            "{not json",
        )
        .unwrap();
        assert_eq!(cache.load(&key()), None);

        // A file where the folder should be: nothing can be written, and nothing fails.
        let blocked = ClusterCache::new(dir.path().join("file"));
        std::fs::write(dir.path().join("file"), "").unwrap();
        blocked.store(&key(), &identity());
        assert_eq!(blocked.load(&key()), None);
    }
}
