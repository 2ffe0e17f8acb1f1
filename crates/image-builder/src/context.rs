//! The build context: a deterministic tar.gz made in memory. Pure.

use std::fmt;
use std::io::Write;

use sha2::{Digest, Sha256};

use crate::dockerfile::{CONNECTOR_DIR, render_dockerfile};
use crate::error::{Error, Result};
use crate::spec::ImageSpec;

/// The fixed modification time of every entry (and of the gzip header): 2000-01-01T00:00:00Z.
/// Not 0, which some tools read as "no time".
pub const FIXED_MTIME: u64 = 946_684_800;

/// The label that carries the context digest on the built image.
pub const CONTEXT_DIGEST_LABEL: &str = "io.github.flink-eks.context-digest";

/// A build context ready to send to the Docker daemon.
///
/// Entries are sorted by path, with mode 0644, owner 0:0, no user or group names and
/// [`FIXED_MTIME`]; the gzip header carries the same fixed time and no file name. Equal
/// specs therefore give equal bytes. The digest is the SHA-256 of the uncompressed tar, so
/// it does not depend on the compressor either.
#[derive(Clone, PartialEq, Eq)]
pub struct BuildContext {
    /// The rendered Dockerfile (also inside the archive, as `Dockerfile`).
    pub dockerfile: String,
    /// The gzip-compressed tar archive.
    pub tar_gz: Vec<u8>,
    /// `sha256:<64 hex>` of the uncompressed tar.
    pub digest: String,
    /// The paths in the archive, in archive order.
    pub entries: Vec<String>,
    /// The platform the Dockerfile's `FROM` names and the build asks the engine for.
    pub platform: String,
}

impl BuildContext {
    /// Validates `spec`, renders its Dockerfile and packs the context.
    ///
    /// ```
    /// use flink_eks_image_builder::{BuildContext, ConnectorJar, ImageSpec};
    /// # fn main() -> flink_eks_image_builder::Result<()> {
    /// let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3")
    ///     .with_connector_jar(ConnectorJar::new("kafka.jar", b"PK...".to_vec()));
    /// let first = BuildContext::new(&spec)?;
    /// let second = BuildContext::new(&spec)?;
    /// assert_eq!(first.tar_gz, second.tar_gz);
    /// assert_eq!(first.entries, ["Dockerfile", "connectors/kafka.jar"]);
    /// assert!(first.digest.starts_with("sha256:"));
    /// # Ok(()) }
    /// ```
    pub fn new(spec: &ImageSpec) -> Result<Self> {
        spec.validate()?;
        let dockerfile = render_dockerfile(spec);
        let mut files: Vec<(String, &[u8])> = Vec::with_capacity(1 + spec.connector_jars.len());
        files.push(("Dockerfile".to_owned(), dockerfile.as_bytes()));
        for jar in &spec.connector_jars {
            files.push((format!("{CONNECTOR_DIR}/{}", jar.name), &jar.bytes));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));

        let tar = pack_tar(&files).map_err(pack_error)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let tar_gz = gzip(&tar).map_err(pack_error)?;
        let entries = files.into_iter().map(|(path, _)| path).collect();
        Ok(Self {
            dockerfile,
            tar_gz,
            digest,
            entries,
            platform: spec.platform.clone(),
        })
    }

    /// The 64 hex digits of the digest.
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }

    /// The tag used when the spec names none: `sha256-<64 hex>`.
    pub fn default_tag(&self) -> String {
        format!("sha256-{}", self.digest_hex())
    }
}

impl fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("digest", &self.digest)
            .field("entries", &self.entries)
            .field("platform", &self.platform)
            .field("tar_gz_len", &self.tar_gz.len())
            .finish_non_exhaustive()
    }
}

fn pack_error(err: std::io::Error) -> Error {
    // Writing into a Vec cannot fail for lack of space; only a malformed entry can get here.
    Error::BuildFailed {
        message: format!("cannot pack the build context: {err}"),
    }
}

fn pack_tar(files: &[(String, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        header.set_username("")?;
        header.set_groupname("")?;
        builder.append_data(&mut header, path, *bytes)?;
    }
    builder.into_inner()
}

fn gzip(tar: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(FIXED_MTIME as u32)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(tar)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::spec::ConnectorJar;

    fn spec() -> ImageSpec {
        ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3")
            .with_connector_jar(ConnectorJar::new("zeta.jar", vec![1, 2, 3]))
            .with_connector_jar(ConnectorJar::new("alpha.jar", vec![4; 2000]))
    }

    fn unpack(tar_gz: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(tar_gz)
            .read_to_end(&mut raw)
            .unwrap();
        let mut archive = tar::Archive::new(raw.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let header = entry.header().clone();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                (path, header, bytes)
            })
            .collect()
    }

    #[test]
    fn same_inputs_give_the_same_bytes_and_digest() {
        let a = BuildContext::new(&spec()).unwrap();
        let b = BuildContext::new(&spec()).unwrap();
        assert_eq!(a.tar_gz, b.tar_gz);
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.digest.len(), "sha256:".len() + 64);
        assert_eq!(a.default_tag(), format!("sha256-{}", &a.digest[7..]));
    }

    #[test]
    fn jar_order_does_not_matter_entries_are_sorted() {
        let mut reversed = spec();
        reversed.connector_jars.reverse();
        let a = BuildContext::new(&spec()).unwrap();
        let b = BuildContext::new(&reversed).unwrap();
        assert_eq!(a.tar_gz, b.tar_gz);
        let paths: Vec<String> = unpack(&a.tar_gz).into_iter().map(|e| e.0).collect();
        assert_eq!(
            paths,
            ["Dockerfile", "connectors/alpha.jar", "connectors/zeta.jar"]
        );
        assert_eq!(paths, a.entries);
    }

    #[test]
    fn entries_have_fixed_times_owners_and_modes() {
        let context = BuildContext::new(&spec()).unwrap();
        for (path, header, _) in unpack(&context.tar_gz) {
            assert_eq!(header.mtime().unwrap(), FIXED_MTIME, "{path}");
            assert_eq!(header.uid().unwrap(), 0, "{path}");
            assert_eq!(header.gid().unwrap(), 0, "{path}");
            assert_eq!(header.mode().unwrap(), 0o644, "{path}");
            assert_eq!(header.username().unwrap(), Some(""), "{path}");
            assert_eq!(header.entry_type(), tar::EntryType::Regular, "{path}");
        }
        // The gzip header: fixed time, no name, "unknown" OS.
        let gz = flate2::read::GzDecoder::new(context.tar_gz.as_slice());
        let header = gz.header().unwrap();
        assert_eq!(header.mtime(), FIXED_MTIME as u32);
        assert_eq!(header.filename(), None);
        assert_eq!(header.operating_system(), 255);
    }

    #[test]
    fn the_archive_holds_the_dockerfile_and_the_jars_byte_for_byte() {
        let context = BuildContext::new(&spec()).unwrap();
        let entries = unpack(&context.tar_gz);
        assert_eq!(entries[0].2, context.dockerfile.as_bytes());
        assert_eq!(entries[1].2, vec![4; 2000]);
        assert_eq!(entries[2].2, vec![1, 2, 3]);
    }

    #[test]
    fn every_input_changes_the_digest() {
        let base = BuildContext::new(&spec()).unwrap().digest;
        let mut jar_changed = spec();
        jar_changed.connector_jars[0].bytes.push(0);
        let variants = [
            jar_changed,
            ImageSpec {
                flink_version: "1.19.1".into(),
                base: "flink:1.19.1".into(),
                ..spec()
            },
            spec().with_base("flink:1.20.0-java17"),
            spec().with_pyflink(true),
            spec().with_platform("linux/arm64"),
            spec().with_connector_jar(ConnectorJar::new("more.jar", vec![])),
        ];
        for variant in variants {
            assert_ne!(
                BuildContext::new(&variant).unwrap().digest,
                base,
                "{variant:?}"
            );
        }
        // Where the image goes and how the base is pulled do not change its content.
        let elsewhere = ImageSpec {
            repository: "ghcr.io/team/flink".into(),
            tag: Some("latest".into()),
            pull_policy: crate::PullPolicy::Never,
            ..spec()
        };
        assert_eq!(BuildContext::new(&elsewhere).unwrap().digest, base);
    }

    #[test]
    fn an_invalid_spec_makes_no_context() {
        let err = BuildContext::new(&ImageSpec::new("latest", "r/x")).unwrap_err();
        assert!(err.to_string().contains("flink_version"), "{err}");
    }
}
