//! What image to make: the inputs, checked. Pure, except [`ConnectorJar::from_path`].

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::platform::{DEFAULT_PLATFORM, Platform};
use crate::reference::{Repository, validate_tag};

/// When the base image is pulled from its registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Pull only when the local daemon does not have it (the default).
    #[default]
    IfMissing,
    /// Never pull: the base must already be in the local daemon (air-gapped builds).
    Never,
    /// Pull before every build, to pick up a moved tag.
    Always,
}

impl PullPolicy {
    /// The policy's name as written in configuration: `if-missing`, `never`, `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IfMissing => "if-missing",
            Self::Never => "never",
            Self::Always => "always",
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PullPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "if-missing" | "missing" => Ok(Self::IfMissing),
            "never" => Ok(Self::Never),
            "always" => Ok(Self::Always),
            other => Err(Error::InvalidSpec {
                field: "pull_policy",
                value: other.to_owned(),
                reason: "write if-missing, never or always".into(),
            }),
        }
    }
}

/// A connector jar to put on the image's classpath (`/opt/flink/lib/<name>`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectorJar {
    /// The file name in the image, for example `flink-sql-connector-kafka-3.3.0-1.20.jar`.
    pub name: String,
    /// The jar's bytes.
    pub bytes: Vec<u8>,
}

impl ConnectorJar {
    /// A jar from its name and bytes.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// Reads a jar from disk; its file name becomes its name in the image.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| Error::InvalidSpec {
                field: "connector_jars",
                value: path.display().to_string(),
                reason: "the path has no UTF-8 file name".into(),
            })?
            .to_owned();
        let bytes = std::fs::read(path).map_err(|source| Error::ReadConnectorJar {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { name, bytes })
    }
}

impl fmt::Debug for ConnectorJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorJar")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Everything that decides the image. Two equal specs give the same build context, hence the
/// same content digest and the same default tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The base image; [`ImageSpec::new`] sets `flink:<flink_version>`. It must hold
    /// `/opt/flink/opt/flink-s3-fs-hadoop-<flink_version>.jar` and a `flink` user.
    pub base: String,
    /// The Flink release, `X.Y.Z` (names the plugin jar and the `apache-flink` pip package).
    pub flink_version: String,
    /// Where the image is pushed, without a tag: `host[:port]/path` (ECR, GHCR, a private
    /// registry) or a Docker Hub name.
    pub repository: String,
    /// The tag to push; `None` uses the content digest (`sha256-<hex>`), which makes the
    /// "already pushed?" check a single manifest HEAD.
    pub tag: Option<String>,
    /// Install python3, pip and `apache-flink==<flink_version>` (needs an apt-based base).
    pub pyflink: bool,
    /// Jars copied into `/opt/flink/lib/`.
    pub connector_jars: Vec<ConnectorJar>,
    /// When the base image is pulled. Not part of the image's content.
    pub pull_policy: PullPolicy,
    /// The platform the image is built for, `os/arch[/variant]` ([`Platform::parse`]):
    /// the base is pulled for it and the build asks for it. Part of the image's content.
    /// [`ImageSpec::new`] sets [`DEFAULT_PLATFORM`].
    pub platform: String,
}

impl ImageSpec {
    /// A spec with the official base `flink:<flink_version>`, no PyFlink, no connectors,
    /// the content-digest tag and [`PullPolicy::IfMissing`].
    pub fn new(flink_version: impl Into<String>, repository: impl Into<String>) -> Self {
        let flink_version = flink_version.into();
        Self {
            base: format!("flink:{flink_version}"),
            flink_version,
            repository: repository.into(),
            tag: None,
            pyflink: false,
            connector_jars: Vec::new(),
            pull_policy: PullPolicy::IfMissing,
            platform: DEFAULT_PLATFORM.to_owned(),
        }
    }

    /// Replaces the base image.
    pub fn with_base(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    /// Sets a tag of the user's choosing instead of the content digest.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Turns PyFlink on or off.
    pub fn with_pyflink(mut self, pyflink: bool) -> Self {
        self.pyflink = pyflink;
        self
    }

    /// Adds a connector jar.
    pub fn with_connector_jar(mut self, jar: ConnectorJar) -> Self {
        self.connector_jars.push(jar);
        self
    }

    /// Sets the pull policy of the base image.
    pub fn with_pull_policy(mut self, pull_policy: PullPolicy) -> Self {
        self.pull_policy = pull_policy;
        self
    }

    /// Sets the platform the image is built for (`linux/arm64`, …).
    pub fn with_platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = platform.into();
        self
    }

    /// Checks every field, naming the first wrong one and the fix.
    pub fn validate(&self) -> Result<()> {
        validate_flink_version(&self.flink_version)?;
        Platform::parse(&self.platform)?;
        validate_base(&self.base)?;
        Repository::parse(&self.repository)?;
        if let Some(tag) = &self.tag {
            validate_tag(tag)?;
        }
        let mut names = std::collections::BTreeSet::new();
        for jar in &self.connector_jars {
            validate_jar_name(&jar.name)?;
            if !names.insert(jar.name.as_str()) {
                return Err(Error::InvalidSpec {
                    field: "connector_jars",
                    value: jar.name.clone(),
                    reason: "two jars have this name; give each a distinct file name".into(),
                });
            }
        }
        Ok(())
    }

    /// The repository, parsed.
    pub fn parsed_repository(&self) -> Result<Repository> {
        Repository::parse(&self.repository)
    }
}

fn validate_flink_version(version: &str) -> Result<()> {
    let parts: Vec<&str> = version.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            field: "flink_version",
            value: version.to_owned(),
            reason: "write a full release like 1.20.0: it names the plugin jar (flink-s3-fs-hadoop-1.20.0.jar) and the apache-flink pip version".into(),
        })
    }
}

fn validate_base(base: &str) -> Result<()> {
    let ok = !base.is_empty()
        && base.len() <= 512
        && base.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '[' | ']')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            field: "base",
            value: base.to_owned(),
            reason: "write an image reference like flink:1.20.0 or registry.example.com/flink:1.20.0 (no spaces or shell characters)".into(),
        })
    }
}

fn validate_jar_name(name: &str) -> Result<()> {
    let ok = name.len() > 4
        && name.len() <= 200
        && name.ends_with(".jar")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            field: "connector_jars",
            value: name.to_owned(),
            reason: "a connector is a file name ending in .jar, of letters, digits, `.`, `_` and `-` (no folders)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3")
    }

    #[test]
    fn new_defaults_to_the_official_base() {
        let spec = spec();
        assert_eq!(spec.base, "flink:1.20.0");
        assert_eq!(spec.tag, None);
        assert_eq!(spec.pull_policy, PullPolicy::IfMissing);
        assert_eq!(spec.platform, "linux/amd64");
        spec.validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named_with_the_fix() {
        let cases = [
            (ImageSpec::new("1.20", "r/x"), "flink_version", "1.20.0"),
            (
                spec().with_base("flink:1.20; rm -rf /"),
                "base",
                "flink:1.20.0",
            ),
            (ImageSpec::new("1.20.0", "R/X"), "repository", "lowercase"),
            (spec().with_tag("-bad"), "tag", "letters"),
            (
                spec().with_platform("linux/aarch64"),
                "platform",
                "linux/arm64",
            ),
            (
                spec().with_connector_jar(ConnectorJar::new("../x.jar", vec![1])),
                "connector_jars",
                ".jar",
            ),
            (
                spec().with_connector_jar(ConnectorJar::new("x.zip", vec![1])),
                "connector_jars",
                ".jar",
            ),
            (
                spec()
                    .with_connector_jar(ConnectorJar::new("a.jar", vec![1]))
                    .with_connector_jar(ConnectorJar::new("a.jar", vec![2])),
                "connector_jars",
                "distinct",
            ),
        ];
        for (spec, field, hint) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
            assert!(err.contains(hint), "{err}");
        }
    }

    #[test]
    fn pull_policy_round_trips() {
        for policy in [PullPolicy::IfMissing, PullPolicy::Never, PullPolicy::Always] {
            assert_eq!(policy.as_str().parse::<PullPolicy>().unwrap(), policy);
        }
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }

    #[test]
    fn debug_of_a_jar_shows_its_size_not_its_bytes() {
        let jar = ConnectorJar::new("a.jar", vec![7; 3]);
        assert_eq!(
            format!("{jar:?}"),
            r#"ConnectorJar { name: "a.jar", len: 3 }"#
        );
    }
}
