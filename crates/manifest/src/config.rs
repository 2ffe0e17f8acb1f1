//! The `flinkConfiguration` a job gets: the entries derived from its typed inputs, then the
//! user's own, with the rules that keep the two from contradicting each other.

use std::collections::BTreeMap;

use crate::{Error, FlinkRelease, FlinkVersion};

/// How often a job checkpoints: the same key in every Flink release from 1.10 to 2.2.
pub const CHECKPOINT_INTERVAL_KEY: &str = "execution.checkpointing.interval";

/// The Flink configuration key of the Hadoop S3 plugin's credential providers.
pub const CREDENTIALS_PROVIDER_KEY: &str = "fs.s3a.aws.credentials.provider";

/// One entry the builder derives from a typed input.
pub(crate) struct Derived {
    pub(crate) key: &'static str,
    pub(crate) value: String,
    /// The typed input the value comes from, as the user knows it.
    pub(crate) field: &'static str,
}

/// The Hadoop key a Flink S3 configuration key reaches, or `None` for keys outside the S3
/// plugin. Flink's S3 plugins mirror the prefixes `s3.`, `s3a.` and `fs.s3a.` onto Hadoop's
/// `fs.s3a.`, and treat `access-key`/`secret-key`/`path-style-access` like their dotted names.
fn hadoop_s3_key(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let rest = ["fs.s3a.", "s3a.", "s3."]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))?;
    let rest = match rest {
        "access-key" => "access.key",
        "secret-key" => "secret.key",
        "path-style-access" => "path.style.access",
        other => other,
    };
    Some(format!("fs.s3a.{rest}"))
}

/// Names every spelling of one setting the same way, so that `s3a.endpoint` and
/// `s3.endpoint`, or `state.checkpoints.dir` and `execution.checkpointing.dir`, are seen as
/// one setting.
fn setting_of(key: &str) -> String {
    if let Some(hadoop) = hadoop_s3_key(key) {
        return hadoop;
    }
    let canonical = match key {
        "execution.checkpointing.dir" => "state.checkpoints.dir",
        "execution.checkpointing.savepoint-dir" => "state.savepoints.dir",
        "high-availability" => "high-availability.type",
        "high-availability.storage-path" => "high-availability.storageDir",
        other => other,
    };
    canonical.to_owned()
}

/// Whether a key would carry an S3 credential (access key, secret key, session token), for
/// any bucket.
fn is_inline_credential(key: &str) -> bool {
    let Some(hadoop) = hadoop_s3_key(key) else {
        return false;
    };
    ["access.key", "secret.key", "session.token", "session-token"]
        .iter()
        .any(|suffix| hadoop.ends_with(&format!(".{suffix}")))
}

fn validate_user_entry(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidConfigKey {
            key: key.to_owned(),
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidConfigValue {
            key: key.to_owned(),
        });
    }
    if is_inline_credential(key) {
        return Err(Error::InlineCredential {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Merges the derived entries with the user's: a user entry for a derived setting must agree
/// with it; every other user entry passes through unchanged.
pub(crate) fn merge(
    derived: Vec<Derived>,
    user: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    for (key, value) in user {
        validate_user_entry(key, value)?;
        let setting = setting_of(key);
        let clash = derived
            .iter()
            .find(|d| setting_of(d.key) == setting && d.value != *value);
        if let Some(ours) = clash {
            return Err(Error::ConfigConflict {
                key: key.clone(),
                user_value: value.clone(),
                ours_key: ours.key,
                ours_value: ours.value.clone(),
                field: ours.field,
            });
        }
    }
    let mut merged: BTreeMap<String, String> = derived
        .into_iter()
        .map(|d| (d.key.to_owned(), d.value))
        .collect();
    merged.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(merged)
}

/// Whether the user's entries already set `setting` (any spelling) to a non-empty value.
pub(crate) fn user_sets(user: &BTreeMap<String, String>, setting: &str) -> bool {
    user.iter()
        .any(|(k, v)| setting_of(k) == setting && !v.trim().is_empty())
}

/// Whether the user's entries turn high availability on.
pub(crate) fn user_enables_ha(user: &BTreeMap<String, String>) -> bool {
    user.iter().any(|(k, v)| {
        setting_of(k) == "high-availability.type"
            && !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "none")
    })
}

/// Keys for the checkpoint directory: `state.checkpoints.dir` up to 1.19,
/// `execution.checkpointing.dir` from 2.0, both for 1.20, which introduced the new name and
/// deprecated the old one (an operator built against an older Flink still reads the old one).
pub(crate) fn checkpoint_dir_keys(release: &FlinkRelease) -> &'static [&'static str] {
    match release.version() {
        v if v >= FlinkVersion::V2_0 => &["execution.checkpointing.dir"],
        FlinkVersion::V1_20 => &["state.checkpoints.dir", "execution.checkpointing.dir"],
        _ => &["state.checkpoints.dir"],
    }
}

/// Keys for the savepoint directory, like [`checkpoint_dir_keys`].
pub(crate) fn savepoint_dir_keys(release: &FlinkRelease) -> &'static [&'static str] {
    match release.version() {
        v if v >= FlinkVersion::V2_0 => &["execution.checkpointing.savepoint-dir"],
        FlinkVersion::V1_20 => &[
            "state.savepoints.dir",
            "execution.checkpointing.savepoint-dir",
        ],
        _ => &["state.savepoints.dir"],
    }
}

/// The key and value that turn on Kubernetes HA for a release: `high-availability.type:
/// kubernetes` from 1.16 on, the factory class under the older key before.
pub(crate) fn kubernetes_ha_entry(release: &FlinkRelease) -> (&'static str, &'static str) {
    if release.version() >= FlinkVersion::V1_16 {
        ("high-availability.type", "kubernetes")
    } else {
        (
            "high-availability",
            "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inline_credentials_are_refused_in_every_spelling() {
        for key in [
            "s3.access-key",
            "s3.secret-key",
            "s3a.access-key",
            "fs.s3a.access.key",
            "fs.s3a.secret.key",
            "fs.s3a.session.token",
            "fs.s3a.bucket.flink-s3-test.secret.key",
            "S3.Access-Key",
        ] {
            let err = merge(vec![], &user(&[(key, "x")])).unwrap_err();
            assert!(
                matches!(err, Error::InlineCredential { .. }),
                "{key}: {err}"
            );
            assert!(err.to_string().contains("Secret"), "{err}");
        }
        merge(vec![], &user(&[("s3.connection.maximum", "64")])).unwrap();
    }

    #[test]
    fn a_user_entry_for_a_derived_setting_must_agree() {
        let derived = || {
            vec![Derived {
                key: "s3.endpoint",
                value: "http://minio:9000".into(),
                field: "S3 endpoint",
            }]
        };
        let err = merge(
            derived(),
            &user(&[("fs.s3a.endpoint", "http://other:9000")]),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ConfigConflict {
                    ours_key: "s3.endpoint",
                    ..
                }
            ),
            "{err}"
        );
        let merged = merge(
            derived(),
            &user(&[("s3.endpoint", "http://minio:9000"), ("a.b", "c")]),
        )
        .unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged["a.b"], "c");
    }

    #[test]
    fn bad_keys_and_values() {
        assert!(matches!(
            merge(vec![], &user(&[("", "x")])).unwrap_err(),
            Error::InvalidConfigKey { .. }
        ));
        assert!(matches!(
            merge(vec![], &user(&[("a key", "x")])).unwrap_err(),
            Error::InvalidConfigKey { .. }
        ));
        assert!(matches!(
            merge(vec![], &user(&[("a", "x\u{0}")])).unwrap_err(),
            Error::InvalidConfigValue { .. }
        ));
    }

    #[test]
    fn settings_are_recognised_under_old_and_new_names() {
        assert!(user_sets(
            &user(&[("execution.checkpointing.dir", "s3://b/c")]),
            "state.checkpoints.dir"
        ));
        assert!(!user_sets(
            &user(&[("state.checkpoints.dir", " ")]),
            "state.checkpoints.dir"
        ));
        assert!(user_enables_ha(&user(&[(
            "high-availability",
            "kubernetes"
        )])));
        assert!(!user_enables_ha(&user(&[(
            "high-availability.type",
            "NONE"
        )])));
    }
}
