//! The operator's CRDs the tests validate against (the Kubernetes stand-in, manifest's schema
//! test), found before anything is compiled or started.
//!
//! Each file is looked for, in this order: the path in its variable (`FLINK_EKS_CRD`,
//! `FLINK_EKS_SNAPSHOT_CRD`); `../shared/crds/` beside the workspace; a copy cached under
//! `target/crds/`; a download of the operator's release file, kept only when its SHA-256 is the
//! one pinned here. When none works the run stops with one line that names the variables and
//! the URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The operator release the CRDs come from.
pub(crate) const RELEASE: &str = "release-1.15.0";

/// Where the release's CRD files are downloaded from: the operator's Helm chart at [`RELEASE`].
pub(crate) const URL_BASE: &str = "https://raw.githubusercontent.com/apache/flink-kubernetes-operator/release-1.15.0/helm/flink-kubernetes-operator/crds";

/// One CRD file of the release.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CrdFile {
    /// The file's name in the chart.
    pub(crate) file: &'static str,
    /// The variable that names a local copy; also how the tests are told where it is.
    pub(crate) env: &'static str,
    /// SHA-256 of the release's file, lowercase hex.
    pub(crate) sha256: &'static str,
}

/// The FlinkDeployment and FlinkStateSnapshot CRDs of [`RELEASE`].
pub(crate) const CRDS: [CrdFile; 2] = [
    CrdFile {
        file: "flinkdeployments.flink.apache.org-v1.yml",
        env: "FLINK_EKS_CRD",
        sha256: "7977265fc26d5e13e46ea5a18b18ce71dc1b93a7c750d781843a7af0d1d13e47",
    },
    CrdFile {
        file: "flinkstatesnapshots.flink.apache.org-v1.yml",
        env: "FLINK_EKS_SNAPSHOT_CRD",
        sha256: "b4d9e65e4465c74ff8526cfc46d823a4a5198d51e0e08a9f0f5a8c6f4380e399",
    },
];

/// Where to look, besides the variables.
pub(crate) struct Places {
    /// `../shared/crds` beside the workspace.
    pub(crate) shared: PathBuf,
    /// The download cache, `target/crds/<release>`.
    pub(crate) cache: PathBuf,
}

impl Places {
    pub(crate) fn of_workspace(root: &Path) -> Places {
        Places {
            shared: root.join("../shared/crds"),
            cache: root.join("target/crds").join(RELEASE),
        }
    }
}

/// Each CRD's variable and the path found for it, for the services' environment.
pub(crate) fn locate(root: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    locate_in(
        &CRDS,
        &Places::of_workspace(root),
        &|name| std::env::var_os(name).map(PathBuf::from),
        &download,
    )
}

/// [`locate`] with its inputs given: the files, the places, the variables and the download.
pub(crate) fn locate_in(
    crds: &[CrdFile],
    places: &Places,
    var: &dyn Fn(&str) -> Option<PathBuf>,
    fetch: &dyn Fn(&str) -> Result<Vec<u8>>,
) -> Result<Vec<(&'static str, PathBuf)>> {
    crds.iter()
        .map(|crd| Ok((crd.env, locate_one(crd, crds, places, var, fetch)?)))
        .collect()
}

fn locate_one(
    crd: &CrdFile,
    all: &[CrdFile],
    places: &Places,
    var: &dyn Fn(&str) -> Option<PathBuf>,
    fetch: &dyn Fn(&str) -> Result<Vec<u8>>,
) -> Result<PathBuf> {
    if let Some(path) = var(crd.env) {
        if !path.is_file() {
            bail!(
                "{} names {}, which is not a file: point it at the operator's {} ({RELEASE}), or unset it",
                crd.env,
                path.display(),
                crd.file
            );
        }
        return Ok(path);
    }
    let shared = places.shared.join(crd.file);
    if shared.is_file() {
        return Ok(shared);
    }
    let cached = places.cache.join(crd.file);
    if std::fs::read(&cached).is_ok_and(|bytes| verify(&bytes, crd.sha256).is_ok()) {
        return Ok(cached);
    }
    let url = format!("{URL_BASE}/{}", crd.file);
    let downloaded = fetch(&url).and_then(|bytes| {
        verify(&bytes, crd.sha256)?;
        Ok(bytes)
    });
    match downloaded {
        Ok(bytes) => {
            std::fs::create_dir_all(&places.cache)
                .with_context(|| format!("cannot create {}", places.cache.display()))?;
            let partial = places.cache.join(format!("{}.partial", crd.file));
            std::fs::write(&partial, &bytes)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            std::fs::rename(&partial, &cached)
                .with_context(|| format!("cannot write {}", cached.display()))?;
            Ok(cached)
        }
        Err(err) => {
            let variables = all
                .iter()
                .map(|c| format!("{} ({})", c.env, c.file))
                .collect::<Vec<_>>()
                .join(" and ");
            bail!(
                "the operator's CRD {} was not found: set {variables} to the files of the operator's {RELEASE}, or put them in {}; downloading {url} failed: {err:#}",
                crd.file,
                places.shared.display()
            )
        }
    }
}

/// Checks `bytes` against a pinned SHA-256.
pub(crate) fn verify(bytes: &[u8], sha256: &str) -> Result<()> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != sha256 {
        bail!("its SHA-256 is {actual}, not the pinned {sha256}");
    }
    Ok(())
}

/// One GET, bounded: 10 s to connect, 30 s in all. Runs on a thread of its own, so it works
/// whether or not the caller is inside an async runtime.
fn download(url: &str) -> Result<Vec<u8>> {
    let url = url.to_owned();
    std::thread::spawn(move || -> Result<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .build()?;
            let response = client.get(&url).send().await?.error_for_status()?;
            Ok(response.bytes().await?.to_vec())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the download thread panicked"))?
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;

    /// A fresh directory under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("flink-eks-crds-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const DEPLOYMENT: &[u8] = b"kind: CustomResourceDefinition # deployments\n";
    const SNAPSHOT: &[u8] = b"kind: CustomResourceDefinition # snapshots\n";

    fn sha(bytes: &[u8]) -> &'static str {
        hex::encode(Sha256::digest(bytes)).leak()
    }

    fn crds() -> [CrdFile; 2] {
        [
            CrdFile {
                sha256: sha(DEPLOYMENT),
                ..CRDS[0]
            },
            CrdFile {
                sha256: sha(SNAPSHOT),
                ..CRDS[1]
            },
        ]
    }

    fn places(dir: &TempDir) -> Places {
        Places {
            shared: dir.0.join("shared/crds"),
            cache: dir.0.join("target/crds").join(RELEASE),
        }
    }

    /// The release's bytes by URL, counting the requests.
    struct Release {
        bodies: BTreeMap<String, Vec<u8>>,
        requests: RefCell<Vec<String>>,
    }
    impl Release {
        fn serving(deployment: &[u8], snapshot: &[u8]) -> Release {
            Release {
                bodies: BTreeMap::from([
                    (format!("{URL_BASE}/{}", CRDS[0].file), deployment.to_vec()),
                    (format!("{URL_BASE}/{}", CRDS[1].file), snapshot.to_vec()),
                ]),
                requests: RefCell::new(Vec::new()),
            }
        }
        fn fetch(&self, url: &str) -> Result<Vec<u8>> {
            self.requests.borrow_mut().push(url.to_owned());
            self.bodies.get(url).cloned().context("404 Not Found")
        }
    }

    fn no_network(url: &str) -> Result<Vec<u8>> {
        bail!("cannot reach {url}: no network")
    }

    #[test]
    fn the_pinned_release_files_are_the_chart_files_of_the_release() {
        assert!(
            URL_BASE.contains(RELEASE)
                && URL_BASE.ends_with("/helm/flink-kubernetes-operator/crds")
        );
        for crd in CRDS {
            assert_eq!(crd.sha256.len(), 64, "{}", crd.file);
            assert!(
                crd.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert_eq!(
            CRDS.map(|c| c.env),
            ["FLINK_EKS_CRD", "FLINK_EKS_SNAPSHOT_CRD"]
        );
    }

    #[test]
    fn verification_accepts_the_pinned_bytes_only() {
        verify(DEPLOYMENT, sha(DEPLOYMENT)).unwrap();
        let err = verify(SNAPSHOT, sha(DEPLOYMENT)).unwrap_err().to_string();
        assert!(
            err.contains(sha(SNAPSHOT)) && err.contains(sha(DEPLOYMENT)),
            "{err}"
        );
    }

    #[test]
    fn the_variables_come_first_then_shared_then_the_cache_then_the_download() {
        let dir = TempDir::new("order");
        let places = places(&dir);
        let crds = crds();
        let release = Release::serving(DEPLOYMENT, SNAPSHOT);
        let fetch = |url: &str| release.fetch(url);

        // Nothing local: both are downloaded, verified, and cached.
        let found = locate_in(&crds, &places, &|_| None, &fetch).unwrap();
        assert_eq!(found[0], ("FLINK_EKS_CRD", places.cache.join(CRDS[0].file)));
        assert_eq!(
            found[1],
            ("FLINK_EKS_SNAPSHOT_CRD", places.cache.join(CRDS[1].file))
        );
        assert_eq!(std::fs::read(&found[0].1).unwrap(), DEPLOYMENT);
        assert_eq!(release.requests.borrow().len(), 2);

        // Cached and verified: no second download.
        locate_in(&crds, &places, &|_| None, &no_network).unwrap();

        // A cache that does not verify is downloaded again.
        std::fs::write(places.cache.join(CRDS[0].file), b"changed").unwrap();
        let found = locate_in(&crds, &places, &|_| None, &fetch).unwrap();
        assert_eq!(std::fs::read(&found[0].1).unwrap(), DEPLOYMENT);
        assert_eq!(release.requests.borrow().len(), 3);

        // ../shared/crds comes before the cache.
        std::fs::create_dir_all(&places.shared).unwrap();
        std::fs::write(places.shared.join(CRDS[0].file), DEPLOYMENT).unwrap();
        let found = locate_in(&crds, &places, &|_| None, &no_network).unwrap();
        assert_eq!(found[0].1, places.shared.join(CRDS[0].file));
        assert_eq!(found[1].1, places.cache.join(CRDS[1].file));

        // The variables come before everything.
        let own = dir.0.join("own-deployments.yml");
        std::fs::write(&own, b"anything").unwrap();
        let var = |name: &str| (name == "FLINK_EKS_CRD").then(|| own.clone());
        let found = locate_in(&crds, &places, &var, &no_network).unwrap();
        assert_eq!(found[0].1, own);
        assert_eq!(release.requests.borrow().len(), 3);
    }

    #[test]
    fn a_variable_naming_no_file_is_refused_by_name() {
        let dir = TempDir::new("bad-var");
        let places = places(&dir);
        std::fs::create_dir_all(&places.shared).unwrap();
        std::fs::write(places.shared.join(CRDS[1].file), SNAPSHOT).unwrap();
        let var =
            |name: &str| (name == "FLINK_EKS_SNAPSHOT_CRD").then(|| dir.0.join("missing.yml"));
        let release = Release::serving(DEPLOYMENT, SNAPSHOT);
        let err = locate_in(&crds(), &places, &var, &|url| release.fetch(url))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("FLINK_EKS_SNAPSHOT_CRD names ") && err.contains("missing.yml"),
            "{err}"
        );
    }

    #[test]
    fn a_download_that_does_not_verify_is_not_kept() {
        let dir = TempDir::new("tampered");
        let places = places(&dir);
        let release = Release::serving(b"tampered", SNAPSHOT);
        let err = format!(
            "{:#}",
            locate_in(&crds(), &places, &|_| None, &|url| release.fetch(url)).unwrap_err()
        );
        assert!(err.contains("SHA-256") && err.contains(URL_BASE), "{err}");
        assert!(!places.cache.join(CRDS[0].file).exists());
    }

    #[test]
    fn with_nothing_found_one_line_names_the_variables_and_the_url() {
        let dir = TempDir::new("none");
        let places = places(&dir);
        let err = format!(
            "{:#}",
            locate_in(&crds(), &places, &|_| None, &no_network).unwrap_err()
        );
        assert!(!err.contains('\n'), "{err}");
        for needle in [
            "FLINK_EKS_CRD",
            "FLINK_EKS_SNAPSHOT_CRD",
            &format!("{URL_BASE}/{}", CRDS[0].file),
            RELEASE,
            "no network",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
