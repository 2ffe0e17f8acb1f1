//! Flink versions: the minor line the operator's CRD names (`v1_20`) and the full release
//! (`1.20.0`) that names the files inside the image.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A Flink minor line, as `spec.flinkVersion` of the operator's CRD names it.
///
/// Every value the CRD's enum accepts (`v1_13` … `v2_2`) has a variant, and nothing else does.
///
/// ```
/// use flink_eks_manifest::FlinkVersion;
///
/// let version: FlinkVersion = "1.20.0".parse()?;
/// assert_eq!(version, FlinkVersion::V1_20);
/// assert_eq!(version.as_crd_value(), "v1_20");
/// assert_eq!("1.20".parse::<FlinkVersion>()?, FlinkVersion::V1_20);
/// assert!("1.12.7".parse::<FlinkVersion>().is_err());
/// # Ok::<(), flink_eks_manifest::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FlinkVersion {
    /// Flink 1.13.
    #[serde(rename = "v1_13")]
    V1_13,
    /// Flink 1.14.
    #[serde(rename = "v1_14")]
    V1_14,
    /// Flink 1.15.
    #[serde(rename = "v1_15")]
    V1_15,
    /// Flink 1.16.
    #[serde(rename = "v1_16")]
    V1_16,
    /// Flink 1.17.
    #[serde(rename = "v1_17")]
    V1_17,
    /// Flink 1.18.
    #[serde(rename = "v1_18")]
    V1_18,
    /// Flink 1.19.
    #[serde(rename = "v1_19")]
    V1_19,
    /// Flink 1.20.
    #[serde(rename = "v1_20")]
    V1_20,
    /// Flink 2.0.
    #[serde(rename = "v2_0")]
    V2_0,
    /// Flink 2.1.
    #[serde(rename = "v2_1")]
    V2_1,
    /// Flink 2.2.
    #[serde(rename = "v2_2")]
    V2_2,
}

impl FlinkVersion {
    /// Every version the CRD accepts, oldest first.
    pub const ALL: [FlinkVersion; 11] = [
        FlinkVersion::V1_13,
        FlinkVersion::V1_14,
        FlinkVersion::V1_15,
        FlinkVersion::V1_16,
        FlinkVersion::V1_17,
        FlinkVersion::V1_18,
        FlinkVersion::V1_19,
        FlinkVersion::V1_20,
        FlinkVersion::V2_0,
        FlinkVersion::V2_1,
        FlinkVersion::V2_2,
    ];

    /// The value of `spec.flinkVersion`: `v1_20` for Flink 1.20.
    pub fn as_crd_value(self) -> &'static str {
        match self {
            FlinkVersion::V1_13 => "v1_13",
            FlinkVersion::V1_14 => "v1_14",
            FlinkVersion::V1_15 => "v1_15",
            FlinkVersion::V1_16 => "v1_16",
            FlinkVersion::V1_17 => "v1_17",
            FlinkVersion::V1_18 => "v1_18",
            FlinkVersion::V1_19 => "v1_19",
            FlinkVersion::V1_20 => "v1_20",
            FlinkVersion::V2_0 => "v2_0",
            FlinkVersion::V2_1 => "v2_1",
            FlinkVersion::V2_2 => "v2_2",
        }
    }

    /// Major and minor number: `(1, 20)` for Flink 1.20.
    pub fn major_minor(self) -> (u32, u32) {
        match self {
            FlinkVersion::V1_13 => (1, 13),
            FlinkVersion::V1_14 => (1, 14),
            FlinkVersion::V1_15 => (1, 15),
            FlinkVersion::V1_16 => (1, 16),
            FlinkVersion::V1_17 => (1, 17),
            FlinkVersion::V1_18 => (1, 18),
            FlinkVersion::V1_19 => (1, 19),
            FlinkVersion::V1_20 => (1, 20),
            FlinkVersion::V2_0 => (2, 0),
            FlinkVersion::V2_1 => (2, 1),
            FlinkVersion::V2_2 => (2, 2),
        }
    }

    /// How the Flink Kubernetes Operator (1.15) treats this version: its
    /// `FlinkVersion.isSupported` is 1.15 and later, 1.15 to 1.18 deprecated. For an
    /// unsupported version the operator only records a Warning Event `UnsupportedFlinkVersion`
    /// and writes no status, so a deploy would wait for nothing.
    pub fn operator_support(self) -> OperatorSupport {
        match self {
            FlinkVersion::V1_13 | FlinkVersion::V1_14 => OperatorSupport::Unsupported,
            FlinkVersion::V1_15
            | FlinkVersion::V1_16
            | FlinkVersion::V1_17
            | FlinkVersion::V1_18 => OperatorSupport::Deprecated,
            _ => OperatorSupport::Supported,
        }
    }

    fn from_major_minor(major: u32, minor: u32) -> Option<FlinkVersion> {
        FlinkVersion::ALL
            .into_iter()
            .find(|v| v.major_minor() == (major, minor))
    }
}

/// How the operator treats a Flink version ([`FlinkVersion::operator_support`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorSupport {
    /// Reconciled and supported.
    Supported,
    /// Reconciled, but the operator's community no longer supports it.
    Deprecated,
    /// Ignored: a Warning Event and no status.
    Unsupported,
}

/// The oldest Flink version the operator reconciles.
pub const OLDEST_OPERATOR_VERSION: FlinkVersion = FlinkVersion::V1_15;

/// The oldest Flink version the operator does not call deprecated.
pub const OLDEST_CURRENT_VERSION: FlinkVersion = FlinkVersion::V1_19;

impl fmt::Display for FlinkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.major_minor();
        write!(f, "{major}.{minor}")
    }
}

/// Parses `1.20`, `1.20.0` (any patch) or the CRD's own `v1_20`.
impl FromStr for FlinkVersion {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let unknown = || Error::UnknownFlinkVersion {
            value: value.to_owned(),
        };
        if let Some(found) = FlinkVersion::ALL
            .into_iter()
            .find(|v| v.as_crd_value() == value)
        {
            return Ok(found);
        }
        let numbers = parse_numbers(value).ok_or_else(unknown)?;
        match numbers.as_slice() {
            [major, minor] | [major, minor, _] => {
                FlinkVersion::from_major_minor(*major, *minor).ok_or_else(unknown)
            }
            _ => Err(unknown()),
        }
    }
}

fn parse_numbers(value: &str) -> Option<Vec<u32>> {
    value
        .split('.')
        .map(|part| {
            let all_digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            all_digits.then(|| part.parse::<u32>().ok()).flatten()
        })
        .collect()
}

/// A full Flink release such as `1.20.0`: its minor line for the CRD and the exact version
/// that names the jars inside the image.
///
/// ```
/// use flink_eks_manifest::{FlinkRelease, FlinkVersion};
///
/// let release: FlinkRelease = "1.20.0".parse()?;
/// assert_eq!(release.version(), FlinkVersion::V1_20);
/// assert_eq!(release.python_jar_uri(), "local:///opt/flink/opt/flink-python-1.20.0.jar");
/// # Ok::<(), flink_eks_manifest::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlinkRelease {
    version: FlinkVersion,
    patch: u32,
}

impl FlinkRelease {
    /// The minor line, as the CRD names it.
    pub fn version(&self) -> FlinkVersion {
        self.version
    }

    /// The patch number: `0` for 1.20.0.
    pub fn patch(&self) -> u32 {
        self.patch
    }

    /// `job.jarURI` of a PyFlink job: the flink-python jar in the image's `opt/` folder.
    ///
    /// Flink 1.13 to 1.15 ship it with a Scala suffix (`flink-python_2.12-1.15.4.jar`), later
    /// releases without (`flink-python-1.20.0.jar`). For PyFlink jobs (entry class
    /// `PythonDriver`) Flink's application entrypoint does not load this jar: it finds the
    /// flink-python jar in `opt/` by its prefix. The URI still names the real file so that a
    /// reader of the manifest is not misled.
    pub fn python_jar_uri(&self) -> String {
        let scala_suffix = if self.version <= FlinkVersion::V1_15 {
            "_2.12"
        } else {
            ""
        };
        format!("local:///opt/flink/opt/flink-python{scala_suffix}-{self}.jar")
    }

    /// Whether the S3 plugin of this release reads EKS Pod Identity credentials.
    ///
    /// Pod Identity needs the AWS SDK for Java v1 1.12.746 or later. Flink's S3 plugins bundle
    /// 1.12.779 from 1.19.2, 1.20.1 and 2.0.0 on (FLINK-36643); earlier releases bundle an
    /// older SDK that cannot read `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    pub fn supports_pod_identity(&self) -> bool {
        match self.version {
            FlinkVersion::V1_19 => self.patch >= 2,
            FlinkVersion::V1_20 => self.patch >= 1,
            v => v >= FlinkVersion::V2_0,
        }
    }
}

impl fmt::Display for FlinkRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.version.major_minor();
        write!(f, "{major}.{minor}.{}", self.patch)
    }
}

/// Parses `MAJOR.MINOR.PATCH`, e.g. `1.20.0`.
impl FromStr for FlinkRelease {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let numbers = parse_numbers(value).ok_or_else(|| Error::UnknownFlinkVersion {
            value: value.to_owned(),
        })?;
        match numbers.as_slice() {
            [major, minor, patch] => {
                let version = FlinkVersion::from_major_minor(*major, *minor).ok_or_else(|| {
                    Error::UnknownFlinkVersion {
                        value: value.to_owned(),
                    }
                })?;
                Ok(FlinkRelease {
                    version,
                    patch: *patch,
                })
            }
            [major, minor] if FlinkVersion::from_major_minor(*major, *minor).is_some() => {
                Err(Error::FlinkVersionWithoutPatch {
                    value: value.to_owned(),
                })
            }
            _ => Err(Error::UnknownFlinkVersion {
                value: value.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crd_value_round_trips() {
        for version in FlinkVersion::ALL {
            assert_eq!(
                version.as_crd_value().parse::<FlinkVersion>().unwrap(),
                version
            );
            assert_eq!(
                version.to_string().parse::<FlinkVersion>().unwrap(),
                version
            );
            let json = serde_json::to_string(&version).unwrap();
            assert_eq!(json, format!("\"{}\"", version.as_crd_value()));
        }
    }

    #[test]
    fn releases() {
        let release: FlinkRelease = "1.20.0".parse().unwrap();
        assert_eq!(release.version(), FlinkVersion::V1_20);
        assert_eq!(release.to_string(), "1.20.0");
        let old: FlinkRelease = "1.15.4".parse().unwrap();
        assert_eq!(
            old.python_jar_uri(),
            "local:///opt/flink/opt/flink-python_2.12-1.15.4.jar"
        );
        let new: FlinkRelease = "2.1.0".parse().unwrap();
        assert_eq!(
            new.python_jar_uri(),
            "local:///opt/flink/opt/flink-python-2.1.0.jar"
        );
    }

    #[test]
    fn unknown_versions_are_errors() {
        for bad in [
            "", "1", "1.12.0", "1.21.0", "3.0.0", "1.20.x", "v1_21", "1..20", "1.20.0.1",
        ] {
            let err = bad.parse::<FlinkRelease>().unwrap_err();
            assert!(
                matches!(err, Error::UnknownFlinkVersion { .. }),
                "{bad}: {err}"
            );
        }
        let err = "1.20".parse::<FlinkRelease>().unwrap_err();
        assert!(
            matches!(err, Error::FlinkVersionWithoutPatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("1.20.0"), "{err}");
        assert!("1.21".parse::<FlinkVersion>().is_err());
    }

    #[test]
    fn pod_identity_support_follows_the_bundled_sdk() {
        let supports = |v: &str| v.parse::<FlinkRelease>().unwrap().supports_pod_identity();
        assert!(!supports("1.18.1"));
        assert!(!supports("1.19.1"));
        assert!(supports("1.19.2"));
        assert!(!supports("1.20.0"));
        assert!(supports("1.20.1"));
        assert!(supports("2.0.0"));
    }

    #[test]
    fn the_operator_ignores_1_13_and_1_14_and_deprecates_1_15_to_1_18() {
        use OperatorSupport::*;
        let support: Vec<(String, OperatorSupport)> = FlinkVersion::ALL
            .iter()
            .map(|v| (v.to_string(), v.operator_support()))
            .collect();
        for (version, expected) in [
            ("1.13", Unsupported),
            ("1.14", Unsupported),
            ("1.15", Deprecated),
            ("1.18", Deprecated),
            ("1.19", Supported),
            ("1.20", Supported),
            ("2.2", Supported),
        ] {
            assert!(
                support.contains(&(version.to_owned(), expected)),
                "{version}: {support:?}"
            );
        }
        assert_eq!(OLDEST_OPERATOR_VERSION.operator_support(), Deprecated);
        assert_eq!(OLDEST_CURRENT_VERSION.operator_support(), Supported);
    }
}
