//! Names that reach Kubernetes or S3, checked before anything is rendered or sent.
//!
//! Every check names the input it rejects and the rule it breaks, so that a caller can
//! show the error as it is.

use std::fmt;

/// A name or location that breaks the rules of the system it is meant for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is not valid: {rule}")]
pub struct InvalidName {
    /// What the value is (`job name`, `S3 bucket`, ...), as the user knows it.
    pub field: &'static str,
    /// The rejected value.
    pub value: String,
    /// The rule it breaks, phrased as what a valid value looks like.
    pub rule: &'static str,
}

impl InvalidName {
    fn new(field: &'static str, value: &str, rule: &'static str) -> Self {
        InvalidName {
            field,
            value: value.to_owned(),
            rule,
        }
    }
}

const DNS1123_LABEL_RULE: &str = "a Kubernetes name (RFC 1123 label) has 1 to 63 characters, \
     lowercase letters, digits and '-', and starts and ends with a letter or digit";

/// Checks an RFC 1123 label: what Kubernetes requires of namespace names, container names
/// and (for the Flink operator, which derives Service names from it) FlinkDeployment names.
pub fn validate_dns1123_label(field: &'static str, value: &str) -> Result<(), InvalidName> {
    let bytes = value.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let valid_ends = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if bytes.is_empty() || bytes.len() > 63 || !valid_chars || !valid_ends {
        return Err(InvalidName::new(field, value, DNS1123_LABEL_RULE));
    }
    Ok(())
}

/// The longest FlinkDeployment name Flink accepts: it becomes `kubernetes.cluster-id`, which
/// Flink limits to 45 characters because it derives Service and ConfigMap names from it.
pub const MAX_JOB_NAME_LEN: usize = 45;

const JOB_NAME_RULE: &str = "a FlinkDeployment name is an RFC 1123 label that starts with a letter \
     (the operator derives a Service name from it) and has at most 45 characters (Flink's limit \
     on kubernetes.cluster-id)";

/// Checks a FlinkDeployment name: an RFC 1123 label, starting with a letter (the `<name>-rest`
/// Service needs an RFC 1035 label), at most [`MAX_JOB_NAME_LEN`] characters.
pub fn validate_job_name(value: &str) -> Result<(), InvalidName> {
    const FIELD: &str = "job name";
    validate_dns1123_label(FIELD, value)?;
    let starts_with_letter = value.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if !starts_with_letter || value.len() > MAX_JOB_NAME_LEN {
        return Err(InvalidName::new(FIELD, value, JOB_NAME_RULE));
    }
    Ok(())
}

const DNS1123_SUBDOMAIN_RULE: &str = "a Kubernetes object name (RFC 1123 subdomain) has 1 to 253 \
     characters, dot-separated labels of lowercase letters, digits and '-'";

/// Checks an RFC 1123 subdomain: what Kubernetes requires of most object names
/// (service accounts, secrets, config maps).
pub fn validate_dns1123_subdomain(field: &'static str, value: &str) -> Result<(), InvalidName> {
    let labels_ok = value
        .split('.')
        .all(|label| validate_dns1123_label(field, label).is_ok());
    if value.is_empty() || value.len() > 253 || !labels_ok {
        return Err(InvalidName::new(field, value, DNS1123_SUBDOMAIN_RULE));
    }
    Ok(())
}

/// Checks an S3 bucket name against the general-purpose bucket naming rules.
pub fn validate_bucket(value: &str) -> Result<(), InvalidName> {
    const FIELD: &str = "S3 bucket";
    let bytes = value.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name has 3 to 63 characters",
        ));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
    {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name has only lowercase letters, digits, '.' and '-'",
        ));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name starts and ends with a letter or digit",
        ));
    }
    if value.contains("..") {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name has no two adjacent periods",
        ));
    }
    if value.split('.').count() == 4 && value.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name is not an IP address",
        ));
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| value.starts_with(p));
    let reserved_suffix = ["-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"]
        .iter()
        .any(|s| value.ends_with(s));
    if reserved_prefix || reserved_suffix {
        return Err(InvalidName::new(
            FIELD,
            value,
            "a bucket name does not use a prefix or suffix that S3 reserves \
             (xn--, sthree-, amzn-s3-demo-, -s3alias, --ol-s3, --x-s3, --table-s3, .mrap)",
        ));
    }
    Ok(())
}

/// Checks an S3 object key that names one file (the script), not a folder.
pub fn validate_object_key(value: &str) -> Result<(), InvalidName> {
    const FIELD: &str = "S3 key";
    if value.is_empty() {
        return Err(InvalidName::new(FIELD, value, "an object key is not empty"));
    }
    if value.len() > 1024 {
        return Err(InvalidName::new(
            FIELD,
            value,
            "an object key has at most 1024 bytes",
        ));
    }
    if value.starts_with('/') {
        return Err(InvalidName::new(
            FIELD,
            value,
            "an object key does not start with '/' (write test/job.py, not /test/job.py)",
        ));
    }
    if value.ends_with('/') {
        return Err(InvalidName::new(
            FIELD,
            value,
            "the script's key names a file, so it does not end with '/'",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidName::new(
            FIELD,
            value,
            "an object key has no control characters",
        ));
    }
    Ok(())
}

/// Where an object lives in S3: a checked bucket and key.
///
/// ```
/// use flink_eks_manifest::S3Location;
///
/// let script = S3Location::new("flink-s3-test", "test/python_demo_s3.py")?;
/// assert_eq!(script.to_string(), "s3://flink-s3-test/test/python_demo_s3.py");
/// assert_eq!(script.file_name(), "python_demo_s3.py");
/// # Ok::<(), flink_eks_manifest::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    bucket: String,
    key: String,
}

impl S3Location {
    /// Checks both parts and builds the location.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Result<Self, InvalidName> {
        let (bucket, key) = (bucket.into(), key.into());
        validate_bucket(&bucket)?;
        validate_object_key(&key)?;
        Ok(S3Location { bucket, key })
    }

    /// Parses `s3://BUCKET/KEY`.
    pub fn parse(uri: &str) -> Result<Self, InvalidName> {
        let rest = uri.strip_prefix("s3://").ok_or_else(|| {
            InvalidName::new("S3 URI", uri, "an S3 URI has the form s3://BUCKET/KEY")
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        S3Location::new(bucket, key)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key, without a leading `/`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The last segment of the key: the file name the script gets inside the pod.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A folder in S3 that a job keeps its state under: a checked bucket and a key prefix that
/// ends with `/`, so that it names exactly the keys inside the folder (`state/` does not
/// cover `state-old/…`).
///
/// ```
/// use flink_eks_manifest::S3Prefix;
///
/// let state = S3Prefix::parse("s3://flink-s3-test/flink-eks/default/job/state")?;
/// assert_eq!(state.to_string(), "s3://flink-s3-test/flink-eks/default/job/state/");
/// assert_eq!(state.prefix(), "flink-eks/default/job/state/");
/// assert_eq!(state.join("checkpoints"), "s3://flink-s3-test/flink-eks/default/job/state/checkpoints");
/// # Ok::<(), flink_eks_manifest::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Prefix {
    bucket: String,
    prefix: String,
}

const S3_PREFIX_FIELD: &str = "S3 state prefix";

impl S3Prefix {
    /// Checks both parts and builds the prefix; a missing trailing `/` is added.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Result<Self, InvalidName> {
        let bucket = bucket.into();
        validate_bucket(&bucket)?;
        let mut prefix = prefix.into();
        let invalid = |rule| Err(InvalidName::new(S3_PREFIX_FIELD, &prefix, rule));
        if prefix.is_empty() || prefix == "/" {
            return invalid(
                "a state prefix names a folder inside the bucket (s3://BUCKET/FOLDER/), not the whole bucket",
            );
        }
        if prefix.starts_with('/') || prefix.contains("//") {
            return invalid("a state prefix has no empty folder names ('//' or a leading '/')");
        }
        if prefix.contains(['*', '?']) {
            return invalid("a state prefix has no '*' or '?': IAM would read them as wildcards");
        }
        if prefix.len() > 512 || prefix.chars().any(char::is_control) {
            return invalid("a state prefix has at most 512 bytes and no control characters");
        }
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Prefix { bucket, prefix })
    }

    /// Parses `s3://BUCKET/PREFIX/`.
    pub fn parse(uri: &str) -> Result<Self, InvalidName> {
        let rest = uri.strip_prefix("s3://").ok_or_else(|| {
            InvalidName::new(
                S3_PREFIX_FIELD,
                uri,
                "a state prefix has the form s3://BUCKET/FOLDER/",
            )
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Prefix::new(bucket, prefix)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, ending with `/`, without a leading `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://BUCKET/PREFIX/<name>`: a folder under the prefix.
    pub fn join(&self, name: &str) -> String {
        format!("{self}{name}")
    }

    /// Whether an object key lies under the prefix.
    pub fn contains_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }
}

impl fmt::Display for S3Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["python-example-s3", "a", "x1", &"a".repeat(63)] {
            validate_dns1123_label("job name", ok).unwrap();
        }
        for bad in ["", "Python", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            let err = validate_dns1123_label("job name", bad).unwrap_err();
            assert_eq!(err.field, "job name");
            assert!(err.to_string().contains("RFC 1123"), "{err}");
        }
    }

    #[test]
    fn job_names() {
        validate_job_name("python-example-s3").unwrap();
        validate_job_name(&"a".repeat(45)).unwrap();
        for bad in ["1job", &"a".repeat(46)] {
            let err = validate_job_name(bad).unwrap_err();
            assert_eq!(err.field, "job name");
            assert!(err.rule.contains("45"), "{err}");
        }
        assert!(
            validate_job_name("Job")
                .unwrap_err()
                .rule
                .contains("RFC 1123")
        );
    }

    #[test]
    fn subdomains() {
        validate_dns1123_subdomain("service account", "flink").unwrap();
        validate_dns1123_subdomain("service account", "flink.jobs").unwrap();
        for bad in ["", "Flink", "a..b", ".a"] {
            validate_dns1123_subdomain("service account", bad).unwrap_err();
        }
    }

    #[test]
    fn buckets() {
        for ok in ["flink-s3-test", "abc", "my.bucket.name", "a1-b2"] {
            validate_bucket(ok).unwrap();
        }
        let cases = [
            ("ab", "3 to 63"),
            ("Flink-Bucket", "lowercase"),
            ("flink_bucket", "lowercase"),
            ("-flink", "starts and ends"),
            ("flink..s3", "adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("xn--flink", "S3 reserves"),
            ("flink-s3alias", "S3 reserves"),
        ];
        for (bad, rule) in cases {
            let err = validate_bucket(bad).unwrap_err();
            assert!(err.rule.contains(rule), "{bad}: {err}");
        }
    }

    #[test]
    fn keys() {
        validate_object_key("test/python_demo_s3.py").unwrap();
        assert!(
            validate_object_key("")
                .unwrap_err()
                .rule
                .contains("not empty")
        );
        assert!(
            validate_object_key("jobs/")
                .unwrap_err()
                .rule
                .contains("'/'")
        );
        assert!(
            validate_object_key("/jobs/a.py")
                .unwrap_err()
                .rule
                .contains("start")
        );
    }

    #[test]
    fn state_prefixes() {
        let p = S3Prefix::parse("s3://flink-s3-test/flink-eks/ns/job/state/").unwrap();
        assert_eq!(p.bucket(), "flink-s3-test");
        assert_eq!(p.prefix(), "flink-eks/ns/job/state/");
        assert_eq!(S3Prefix::parse(&p.to_string()).unwrap(), p);
        assert_eq!(
            S3Prefix::parse("s3://flink-s3-test/state")
                .unwrap()
                .prefix(),
            "state/"
        );
        assert!(p.contains_key("flink-eks/ns/job/state/checkpoints/x"));
        assert!(!p.contains_key("flink-eks/ns/job/state-old/x"));
        let cases = [
            ("flink-s3-test/state/", "s3://BUCKET/FOLDER/"),
            ("s3://flink-s3-test", "not the whole bucket"),
            ("s3://flink-s3-test/", "not the whole bucket"),
            ("s3://flink-s3-test//state/", "'//'"),
            ("s3://flink-s3-test/a//b/", "'//'"),
            ("s3://flink-s3-test/state/*", "wildcards"),
            ("s3://flink-s3-test/st?te/", "wildcards"),
        ];
        for (bad, rule) in cases {
            let err = S3Prefix::parse(bad).unwrap_err();
            assert_eq!(err.field, "S3 state prefix", "{bad}");
            assert!(err.rule.contains(rule), "{bad}: {err}");
        }
        assert_eq!(
            S3Prefix::parse("s3://Bad_Bucket/state/").unwrap_err().field,
            "S3 bucket"
        );
    }

    #[test]
    fn s3_uri_round_trip() {
        let loc = S3Location::parse("s3://flink-s3-test/test/python_demo_s3.py").unwrap();
        assert_eq!(loc.bucket(), "flink-s3-test");
        assert_eq!(loc.key(), "test/python_demo_s3.py");
        assert_eq!(loc.file_name(), "python_demo_s3.py");
        assert_eq!(S3Location::parse(&loc.to_string()).unwrap(), loc);
        assert!(S3Location::parse("flink-s3-test/a.py").is_err());
        assert!(S3Location::parse("s3://flink-s3-test").is_err());
    }
}
