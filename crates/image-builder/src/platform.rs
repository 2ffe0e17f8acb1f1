//! The platform an image is built for (`os/arch[/variant]`, as Docker names platforms). Pure.

use crate::error::{Error, Result};

/// The platform an image is built for when none is named: the machines most Kubernetes
/// clusters run, and the only one PyFlink's `pemja` ships Linux wheels for.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// The architectures Docker and Kubernetes name (`GOARCH` values) that Linux nodes run, with
/// the variants Docker accepts for each (`None`: no variant).
const ARCHITECTURES: &[(&str, &[Option<&str>])] = &[
    (
        "amd64",
        &[None, Some("v1"), Some("v2"), Some("v3"), Some("v4")],
    ),
    ("arm64", &[None, Some("v8")]),
    ("arm", &[Some("v6"), Some("v7"), None]),
    ("ppc64le", &[None]),
    ("s390x", &[None]),
    ("riscv64", &[None]),
    ("386", &[None]),
];

/// Spellings other tools use for an architecture, with the name Docker uses.
const ALIASES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("aarch64", "arm64"),
    ("armhf", "arm/v7"),
    ("i386", "386"),
];

/// A platform, checked: `os/arch[/variant]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform<'a> {
    /// Always `linux`: Flink's pods run on Linux nodes.
    pub os: &'a str,
    /// The architecture as Docker and Kubernetes (`kubernetes.io/arch`) name it.
    pub architecture: &'a str,
    /// The variant (`v8` of `arm64/v8`), if given.
    pub variant: Option<&'a str>,
}

impl<'a> Platform<'a> {
    /// Parses and checks `value`: `linux/amd64`, `linux/arm64`, `linux/arm64/v8`,
    /// `linux/arm/v7`, … An error names the field `platform` and what to write.
    ///
    /// ```
    /// use flink_eks_image_builder::Platform;
    /// let arm = Platform::parse("linux/arm64/v8").unwrap();
    /// assert_eq!((arm.os, arm.architecture, arm.variant), ("linux", "arm64", Some("v8")));
    /// assert!(Platform::parse("linux/aarch64").unwrap_err().to_string().contains("linux/arm64"));
    /// ```
    pub fn parse(value: &'a str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidSpec {
            field: "platform",
            value: value.to_owned(),
            reason,
        };
        let parts: Vec<&str> = value.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, architecture] => (*os, *architecture, None),
            [os, architecture, variant] => (*os, *architecture, Some(*variant)),
            _ => {
                return Err(invalid(
                    "write os/arch[/variant] as Docker names platforms, e.g. linux/amd64 or linux/arm64".into(),
                ));
            }
        };
        if os != "linux" {
            return Err(invalid(format!(
                "Flink's pods run on Linux nodes: write linux/{}",
                architecture.to_ascii_lowercase()
            )));
        }
        if let Some((_, docker)) = ALIASES.iter().find(|(alias, _)| *alias == architecture) {
            return Err(invalid(format!(
                "Docker calls this architecture {docker}: write linux/{docker}"
            )));
        }
        let Some((_, variants)) = ARCHITECTURES.iter().find(|(a, _)| *a == architecture) else {
            return Err(invalid(format!(
                "unknown architecture {architecture:?}: write one of {}",
                known_platforms()
            )));
        };
        if !variants.contains(&variant) {
            let allowed: Vec<String> = variants
                .iter()
                .map(|v| match v {
                    Some(v) => format!("linux/{architecture}/{v}"),
                    None => format!("linux/{architecture}"),
                })
                .collect();
            return Err(invalid(format!("write one of {}", allowed.join(", "))));
        }
        Ok(Self {
            os,
            architecture,
            variant,
        })
    }

    /// Whether an image whose configuration says `os`, `architecture` and `variant` (as
    /// `docker image inspect` and the registry's image config report them) runs on this
    /// platform. A missing variant matches the architecture's default one.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        os == self.os
            && architecture == self.architecture
            && without_default(architecture, variant)
                == without_default(self.architecture, self.variant)
    }
}

/// `variant`, or `None` when it is empty or the architecture's default (`arm64/v8`,
/// `amd64/v1`), which Docker omits.
fn without_default<'v>(architecture: &str, variant: Option<&'v str>) -> Option<&'v str> {
    match (architecture, variant) {
        (_, Some("")) | ("arm64", Some("v8")) | ("amd64", Some("v1")) => None,
        (_, variant) => variant,
    }
}

fn known_platforms() -> String {
    ARCHITECTURES
        .iter()
        .map(|(a, _)| format!("linux/{a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_platforms_are_accepted() {
        for value in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/amd64/v2",
            "linux/ppc64le",
            "linux/s390x",
        ] {
            Platform::parse(value).unwrap();
        }
        assert_eq!(
            Platform::parse(DEFAULT_PLATFORM).unwrap(),
            Platform {
                os: "linux",
                architecture: "amd64",
                variant: None
            }
        );
    }

    #[test]
    fn wrong_platforms_name_the_field_and_what_to_write() {
        for (value, hint) in [
            ("amd64", "os/arch[/variant]"),
            ("linux/amd64/v2/x", "os/arch[/variant]"),
            ("", "os/arch[/variant]"),
            ("windows/amd64", "write linux/amd64"),
            ("darwin/arm64", "write linux/arm64"),
            ("linux/x86_64", "write linux/amd64"),
            ("linux/aarch64", "write linux/arm64"),
            ("linux/mips", "linux/amd64, linux/arm64"),
            ("linux/arm64/v7", "linux/arm64, linux/arm64/v8"),
            ("linux/amd64/", "linux/amd64, linux/amd64/v1"),
            ("Linux/AMD64", "write linux/amd64"),
        ] {
            let err = Platform::parse(value).unwrap_err().to_string();
            assert!(err.starts_with("invalid platform `"), "{value}: {err}");
            assert!(err.contains(hint), "{value}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn an_image_matches_its_platform_with_default_variants() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", None));
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "arm64", Some("")));
        assert!(!arm64.matches("linux", "amd64", None));
        assert!(!arm64.matches("windows", "arm64", None));
        let v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(v8.matches("linux", "arm64", None));
        let arm7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(arm7.matches("linux", "arm", Some("v7")));
        assert!(!arm7.matches("linux", "arm", Some("v6")));
    }
}
