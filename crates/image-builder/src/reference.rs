//! Image repository names: which registry, which path, which tag. Pure.

use std::fmt;

use crate::error::{Error, Result};

/// The registry Docker uses when a repository names none.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker Hub's credentials have in the Docker config file and in credential helpers.
const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A repository split into its registry host and its path there, as Docker reads
/// `[host[:port]/]path`: the first component is a host when it holds a `.` or a `:` or is
/// `localhost`; otherwise the repository is on Docker Hub (`library/` added to one-part names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The repository as the user wrote it (what the Docker daemon is given).
    original: String,
    /// `host[:port]`, or `docker.io`.
    registry: String,
    /// The path inside the registry, for example `library/flink` or `team/flink-s3`.
    path: String,
}

impl Repository {
    /// Parses and checks a repository name (no tag, no digest).
    ///
    /// ```
    /// use flink_eks_image_builder::Repository;
    /// # fn main() -> flink_eks_image_builder::Result<()> {
    /// let repo = Repository::parse("127.0.0.1:5000/team/flink-s3")?;
    /// assert_eq!(repo.registry(), "127.0.0.1:5000");
    /// assert_eq!(repo.path(), "team/flink-s3");
    /// let hub = Repository::parse("hiha2/flink-s3")?;
    /// assert_eq!(hub.registry(), "docker.io");
    /// # Ok(()) }
    /// ```
    pub fn parse(repository: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidSpec {
            field: "repository",
            value: repository.to_owned(),
            reason,
        };
        if repository.is_empty() {
            return Err(invalid("it is empty; write for example 123456789012.dkr.ecr.us-east-1.amazonaws.com/flink-s3 or ghcr.io/team/flink-s3".into()));
        }
        let (registry, path) = match repository.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => {
                let path = if repository.contains('/') {
                    repository.to_owned()
                } else {
                    format!("library/{repository}")
                };
                (DOCKER_HUB.to_owned(), path)
            }
        };
        if path.contains('@') {
            return Err(invalid(
                "a repository holds no digest; the digest is computed from the inputs".into(),
            ));
        }
        if path.contains(':') {
            return Err(invalid(
                "a repository holds no tag; give the tag on its own (or none: the content digest is used)"
                    .into(),
            ));
        }
        validate_host(&registry).map_err(invalid)?;
        for component in path.split('/') {
            if !is_path_component(component) {
                return Err(invalid(format!(
                    "path component `{component}` must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
                )));
            }
        }
        if registry.len() + 1 + path.len() > 255 {
            return Err(invalid("longer than 255 characters".into()));
        }
        Ok(Self {
            original: repository.to_owned(),
            registry,
            path,
        })
    }

    /// The repository as written, which is what the Docker daemon is given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The registry host (`host[:port]`), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path inside the registry.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host that serves the registry's HTTP API (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The key of this registry in the Docker config file and for credential helpers.
    pub fn config_key(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_CONFIG_KEY
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine (127.0.0.0/8, `localhost`, `[::1]`): spoken to in
    /// plain HTTP, as the Docker daemon does by default.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Whether `host[:port]` names this machine.
pub(crate) fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    if host == "localhost" || host == "::1" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn validate_host(registry: &str) -> Result<(), String> {
    let (host, port) = if registry.starts_with('[') {
        match registry.rsplit_once("]:") {
            Some((host, port)) => (format!("{host}]"), Some(port)),
            None => (registry.to_owned(), None),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (registry.to_owned(), None),
        }
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("registry port `{port}` is not a number"));
    }
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if host_ok {
        Ok(())
    } else {
        Err(format!("registry host `{host}` is not a host name"))
    }
}

fn is_path_component(component: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: `.`, `_`, `__` or a run of dashes.
        let start = i;
        match b {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start {
            return false;
        }
        expect_alnum = true;
    }
    !expect_alnum
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn validate_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            field: "tag",
            value: tag.to_owned(),
            reason:
                "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
                    .into(),
        })
    }
}

/// Splits an image reference `name[:tag][@digest]` into the name and what `create_image`
/// takes as its tag (the tag, or the digest). A reference with neither gets `latest`.
pub(crate) fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name, digest);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(colon) => (
            &reference[..last_slash + colon],
            &reference[last_slash + colon + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_and_hub_names() {
        let local = Repository::parse("127.0.0.1:5000/flink-s3").unwrap();
        assert_eq!(
            (local.registry(), local.path(), local.api_host()),
            ("127.0.0.1:5000", "flink-s3", "127.0.0.1:5000")
        );
        assert!(local.is_loopback());

        let ecr =
            Repository::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/flink").unwrap();
        assert_eq!(
            ecr.registry(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert!(!ecr.is_loopback());

        let hub = Repository::parse("flink-s3").unwrap();
        assert_eq!(hub.registry(), "docker.io");
        assert_eq!(hub.path(), "library/flink-s3");
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.config_key(), "https://index.docker.io/v1/");
        assert_eq!(hub.as_str(), "flink-s3");

        let localhost = Repository::parse("localhost/a/b").unwrap();
        assert_eq!(localhost.registry(), "localhost");
        assert!(localhost.is_loopback());
    }

    #[test]
    fn rejects_tags_digests_and_uppercase_with_a_reason() {
        for (bad, needle) in [
            ("", "empty"),
            ("hiha2/flink-s3:latest", "no tag"),
            ("127.0.0.1:5000/flink:1", "no tag"),
            ("repo@sha256:abc", "no digest"),
            ("Hiha2/Flink", "lowercase"),
            ("a//b", "lowercase"),
            ("a/-b", "lowercase"),
            ("host:port/x", "port"),
        ] {
            let err = Repository::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(err.contains("repository"), "{bad}: {err}");
        }
    }

    #[test]
    fn path_components_follow_the_distribution_grammar() {
        for good in ["a", "a.b", "a_b", "a__b", "a---b", "flink-s3", "x9"] {
            assert!(is_path_component(good), "{good}");
        }
        for bad in ["", "a.", ".a", "a___b", "a..b", "a-", "A", "a+b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn tags_are_checked() {
        validate_tag("latest").unwrap();
        validate_tag("sha256-0123abcd").unwrap();
        validate_tag("1.20.0_py").unwrap();
        assert!(validate_tag("").is_err());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("a/b").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1:5000", "127.1.2.3", "localhost:1", "[::1]:5000"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1:5000", "ghcr.io", "docker.io"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn splits_references_for_pulls() {
        assert_eq!(split_reference("flink:1.20.0"), ("flink", "1.20.0"));
        assert_eq!(split_reference("flink"), ("flink", "latest"));
        assert_eq!(
            split_reference("127.0.0.1:5000/base:1.20.0"),
            ("127.0.0.1:5000/base", "1.20.0")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/base"),
            ("127.0.0.1:5000/base", "latest")
        );
        assert_eq!(
            split_reference("flink@sha256:abcd"),
            ("flink", "sha256:abcd")
        );
    }
}
