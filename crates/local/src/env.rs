//! Where a run's Python comes from and the environment it runs in. No IO.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use flink_eks_manifest::FlinkRelease;

/// The file in a virtual environment that records what was installed into it, written only
/// after `pip install` succeeded, so that a second run reuses the environment and an
/// interrupted install is redone.
pub const STAMP_FILE: &str = ".flink-eks-requirement";

/// The virtual environment of one PyFlink release under the cache directory:
/// `<cache>/pyflink-<release>`.
pub fn venv_dir(cache: &Path, release: &FlinkRelease) -> PathBuf {
    cache.join(format!("pyflink-{release}"))
}

/// What pip installs for a release: exactly the job's version.
pub fn requirement(release: &FlinkRelease) -> String {
    format!("apache-flink=={release}")
}

/// The interpreter of a virtual environment.
pub fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// `PATH` with the interpreter's folder first: Flink's Python workers start `python` from
/// `PATH` unless told otherwise, and the client's own interpreter must be the one found.
pub fn path_with(python: &Path, path: Option<&std::ffi::OsStr>) -> OsString {
    let mut dirs: Vec<PathBuf> = python.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = path {
        dirs.extend(std::env::split_paths(path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_environment_per_release() {
        let release: FlinkRelease = "1.20.0".parse().unwrap();
        let venv = venv_dir(Path::new("target/flink-eks/local"), &release);
        assert_eq!(venv, Path::new("target/flink-eks/local/pyflink-1.20.0"));
        assert_eq!(
            venv_python(&venv),
            Path::new("target/flink-eks/local/pyflink-1.20.0/bin/python")
        );
        assert_eq!(requirement(&release), "apache-flink==1.20.0");
        let other: FlinkRelease = "1.19.2".parse().unwrap();
        assert_ne!(
            venv_dir(Path::new("c"), &other),
            venv_dir(Path::new("c"), &release)
        );
    }

    #[test]
    fn the_interpreters_folder_comes_first() {
        let path = path_with(
            Path::new("/venv/bin/python"),
            Some("/usr/bin:/bin".as_ref()),
        );
        assert_eq!(path, "/venv/bin:/usr/bin:/bin");
        assert_eq!(path_with(Path::new("/venv/bin/python"), None), "/venv/bin");
    }
}
