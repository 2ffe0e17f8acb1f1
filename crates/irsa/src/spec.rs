//! What the user asks for: which service account gets which role, reading what.

use flink_eks_manifest::{
    InvalidName, S3Location, S3Prefix, validate_bucket, validate_dns1123_label,
    validate_dns1123_subdomain,
};

use crate::documents::{OidcIssuer, Partition, PermissionPolicy, TrustPolicy};

/// What the role may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum S3Grant {
    /// Exactly one object: the job's script.
    Object(S3Location),
    /// Every object under a folder of a bucket (`PREFIX/*`); an empty prefix means every
    /// object of the bucket. Build it with [`S3Grant::prefix`], which checks both parts.
    Prefix {
        /// The bucket.
        bucket: String,
        /// The folder, without leading `/`; a trailing `/` is optional.
        prefix: String,
    },
}

impl S3Grant {
    /// A grant on every object under `prefix` in `bucket`, both checked.
    pub fn prefix(
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<S3Grant, InvalidName> {
        let grant = S3Grant::Prefix {
            bucket: bucket.into(),
            prefix: prefix.into(),
        };
        grant.validate()?;
        Ok(grant)
    }

    /// The bucket the grant is in.
    pub fn bucket(&self) -> &str {
        match self {
            S3Grant::Object(location) => location.bucket(),
            S3Grant::Prefix { bucket, .. } => bucket,
        }
    }

    /// Checks the bucket and, for a prefix, that it is a plain folder name: no leading
    /// `/`, and none of IAM's wildcards `*` and `?` (which would widen the grant).
    pub fn validate(&self) -> Result<(), InvalidName> {
        let S3Grant::Prefix { bucket, prefix } = self else {
            return Ok(()); // S3Location is checked when it is built.
        };
        validate_bucket(bucket)?;
        let invalid = |rule| InvalidName {
            field: "S3 prefix",
            value: prefix.clone(),
            rule,
        };
        if prefix.starts_with('/') {
            return Err(invalid(
                "a prefix does not start with '/' (write jobs/, not /jobs/)",
            ));
        }
        if prefix.contains(['*', '?']) {
            return Err(invalid(
                "a prefix has no '*' or '?': IAM would read them as wildcards",
            ));
        }
        if prefix.chars().any(char::is_control) || prefix.len() > 1024 {
            return Err(invalid(
                "a prefix has at most 1024 bytes and no control characters",
            ));
        }
        Ok(())
    }
}

/// How pods get AWS credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentityMode {
    /// IAM roles for service accounts: an IAM OIDC provider for the cluster, a trust
    /// policy on the service account's token, and the `eks.amazonaws.com/role-arn`
    /// annotation on the service account.
    #[default]
    Irsa,
    /// EKS Pod Identity: a trust policy on `pods.eks.amazonaws.com` and a pod identity
    /// association in EKS. Needs the EKS Pod Identity Agent add-on on the cluster.
    PodIdentity,
}

/// Everything [`crate::Irsa`] needs to know: one role for one service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrsaSpec {
    /// The EKS cluster name.
    pub cluster: String,
    /// The namespace of the service account (where the FlinkDeployment runs).
    pub namespace: String,
    /// The service account the Flink pods run as (the operator's default is `flink`).
    pub service_account: String,
    /// The IAM role to create or keep.
    pub role_name: String,
    /// The customer-managed IAM policy to create or keep.
    pub policy_name: String,
    /// What the role may read.
    pub grant: S3Grant,
    /// Also grant `s3:ListBucket` on the key or prefix, so that a missing key reads as 404.
    pub list_bucket: bool,
    /// Where the job keeps its state (checkpoints, savepoints, HA metadata): the policy then
    /// also grants reading, writing and deleting objects under this prefix, and listing it.
    /// `None` for a stateless job.
    pub state: Option<S3Prefix>,
    /// IRSA or EKS Pod Identity.
    pub mode: IdentityMode,
    /// Take over a role or policy of the same name that flink-eks did not create: tag it as
    /// ours and correct it. Without this flag such a role or policy is never modified.
    pub adopt: bool,
}

const IAM_NAME_RULE_ROLE: &str =
    "an IAM role name has 1 to 64 characters: letters, digits and + = , . @ _ -";
const IAM_NAME_RULE_POLICY: &str =
    "an IAM policy name has 1 to 128 characters: letters, digits and + = , . @ _ -";
const CLUSTER_RULE: &str = "an EKS cluster name has 1 to 100 characters: letters, digits, '-' and '_', \
     starting with a letter or digit";

fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Checks an IAM role name: 1 to 64 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_role_name(value: &str) -> Result<(), InvalidName> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(is_iam_name_char) {
        return Err(InvalidName {
            field: "IAM role name",
            value: value.to_owned(),
            rule: IAM_NAME_RULE_ROLE,
        });
    }
    Ok(())
}

/// Checks an IAM policy name: 1 to 128 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_policy_name(value: &str) -> Result<(), InvalidName> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(is_iam_name_char) {
        return Err(InvalidName {
            field: "IAM policy name",
            value: value.to_owned(),
            rule: IAM_NAME_RULE_POLICY,
        });
    }
    Ok(())
}

/// Checks an EKS cluster name: 1 to 100 characters of `[A-Za-z0-9_-]`, starting with a
/// letter or digit.
pub fn validate_cluster_name(value: &str) -> Result<(), InvalidName> {
    let valid = !value.is_empty()
        && value.len() <= 100
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(InvalidName {
            field: "EKS cluster name",
            value: value.to_owned(),
            rule: CLUSTER_RULE,
        });
    }
    Ok(())
}

impl IrsaSpec {
    /// Checks every name before anything is read or written.
    pub fn validate(&self) -> Result<(), InvalidName> {
        validate_cluster_name(&self.cluster)?;
        validate_dns1123_label("namespace", &self.namespace)?;
        validate_dns1123_subdomain("service account", &self.service_account)?;
        validate_role_name(&self.role_name)?;
        validate_policy_name(&self.policy_name)?;
        self.grant.validate()?;
        if let (Some(state), S3Grant::Object(script)) = (&self.state, &self.grant)
            && state.bucket() == script.bucket()
            && state.contains_key(script.key())
        {
            return Err(InvalidName {
                field: "S3 state prefix",
                value: state.to_string(),
                rule: "the state prefix does not hold the job's script: the job could \
                       overwrite its own code; choose a prefix beside the script's key",
            });
        }
        Ok(())
    }

    /// The permission policy this spec asks for.
    pub fn permission_policy(&self, partition: Partition) -> PermissionPolicy {
        let policy = PermissionPolicy::new(partition, &self.grant, self.list_bucket);
        match &self.state {
            Some(state) => policy.with_state(partition, state),
            None => policy,
        }
    }

    /// The trust policy this spec asks for. `account` and `issuer` come from STS and EKS
    /// in a real run; a dry run passes placeholders (the issuer is ignored for Pod
    /// Identity).
    pub fn trust_policy(
        &self,
        partition: Partition,
        account: &str,
        issuer: &OidcIssuer,
    ) -> TrustPolicy {
        match self.mode {
            IdentityMode::Irsa => TrustPolicy::irsa(
                partition,
                account,
                issuer,
                &self.namespace,
                &self.service_account,
            ),
            IdentityMode::PodIdentity => {
                TrustPolicy::pod_identity(&self.namespace, &self.service_account)
            }
        }
    }

    /// The role's ARN in an account.
    pub fn role_arn(&self, partition: Partition, account: &str) -> String {
        format!("arn:{partition}:iam::{account}:role/{}", self.role_name)
    }

    /// The policy's ARN in an account (customer-managed policies live at path `/`).
    pub fn policy_arn(&self, partition: Partition, account: &str) -> String {
        format!("arn:{partition}:iam::{account}:policy/{}", self.policy_name)
    }

    /// The service account as reports name it: `namespace/name`.
    pub(crate) fn account_name(&self) -> String {
        format!("{}/{}", self.namespace, self.service_account)
    }

    /// The pod identity association as reports name it: `cluster namespace/name`.
    pub(crate) fn association_name(&self) -> String {
        format!("{} {}", self.cluster, self.account_name())
    }
}

/// The permission policy as indented JSON (`iam-policy.json` of a dry run). Pure: no IO.
///
/// ```
/// use flink_eks_irsa::{IdentityMode, IrsaSpec, S3Grant, documents::Partition, render_permission_policy};
/// use flink_eks_manifest::S3Location;
///
/// let spec = IrsaSpec {
///     cluster: "demo".into(),
///     namespace: "default".into(),
///     service_account: "flink".into(),
///     role_name: "flink-s3-reader".into(),
///     policy_name: "flink-s3-reader".into(),
///     grant: S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py")?),
///     list_bucket: true,
///     mode: IdentityMode::Irsa,
///     adopt: false,
///     state: None,
/// };
/// let json = render_permission_policy(&spec, Partition::Aws)?;
/// assert!(json.contains("arn:aws:s3:::flink-s3-test/test/job.py"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_permission_policy(
    spec: &IrsaSpec,
    partition: Partition,
) -> Result<String, InvalidName> {
    spec.validate()?;
    Ok(spec.permission_policy(partition).to_pretty_json())
}

/// The trust policy as indented JSON (`trust-policy.json` of a dry run). Pure: no IO.
/// `account` is not checked and `issuer` may be any well-formed URL, so that a dry run
/// can pass placeholders such as `ACCOUNT_ID` and
/// `https://oidc.eks.REGION.amazonaws.com/id/CLUSTER_ID`.
pub fn render_trust_policy(
    spec: &IrsaSpec,
    partition: Partition,
    account: &str,
    issuer: &str,
) -> Result<String, InvalidName> {
    spec.validate()?;
    let issuer = OidcIssuer::parse(issuer)?;
    Ok(spec
        .trust_policy(partition, account, &issuer)
        .to_pretty_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> IrsaSpec {
        IrsaSpec {
            cluster: "flink-demo".into(),
            namespace: "default".into(),
            service_account: "flink".into(),
            role_name: "flink-s3-reader".into(),
            policy_name: "flink-s3-read-script".into(),
            grant: S3Grant::Object(
                S3Location::parse("s3://flink-s3-test/test/python_demo_s3.py").unwrap(),
            ),
            list_bucket: false,
            mode: IdentityMode::Irsa,
            adopt: false,
            state: None,
        }
    }

    #[test]
    fn role_names() {
        validate_role_name("flink-s3_reader+=,.@").unwrap();
        validate_role_name(&"r".repeat(64)).unwrap();
        for bad in [
            "",
            "has space",
            "slash/role",
            "ümlaut",
            "star*",
            &"r".repeat(65),
        ] {
            let err = validate_role_name(bad).unwrap_err();
            assert_eq!(err.field, "IAM role name");
            assert!(err.to_string().contains("1 to 64"), "{err}");
        }
    }

    #[test]
    fn policy_names() {
        validate_policy_name(&"p".repeat(128)).unwrap();
        assert!(validate_policy_name(&"p".repeat(129)).is_err());
        assert!(validate_policy_name("a:b").is_err());
    }

    #[test]
    fn cluster_names() {
        validate_cluster_name("flink_demo-1").unwrap();
        for bad in ["", "-x", "a.b", &"c".repeat(101)] {
            assert_eq!(
                validate_cluster_name(bad).unwrap_err().field,
                "EKS cluster name"
            );
        }
    }

    #[test]
    fn spec_validation_names_the_field() {
        let mut s = spec();
        s.validate().unwrap();
        s.role_name = "x".repeat(65);
        assert_eq!(s.validate().unwrap_err().field, "IAM role name");
        let mut s = spec();
        s.namespace = "Default".into();
        assert_eq!(s.validate().unwrap_err().field, "namespace");
        let mut s = spec();
        s.service_account = "Flink SA".into();
        assert_eq!(s.validate().unwrap_err().field, "service account");
        let mut s = spec();
        s.grant = S3Grant::Prefix {
            bucket: "Bad_Bucket".into(),
            prefix: "jobs".into(),
        };
        assert_eq!(s.validate().unwrap_err().field, "S3 bucket");
    }

    #[test]
    fn prefixes() {
        S3Grant::prefix("flink-s3-test", "jobs/").unwrap();
        S3Grant::prefix("flink-s3-test", "").unwrap();
        for bad in ["/jobs", "jobs/*", "a?b"] {
            assert_eq!(
                S3Grant::prefix("flink-s3-test", bad).unwrap_err().field,
                "S3 prefix"
            );
        }
    }

    #[test]
    fn arns() {
        let s = spec();
        assert_eq!(
            s.role_arn(Partition::AwsCn, "123456789012"),
            "arn:aws-cn:iam::123456789012:role/flink-s3-reader"
        );
        assert_eq!(
            s.policy_arn(Partition::Aws, "123456789012"),
            "arn:aws:iam::123456789012:policy/flink-s3-read-script"
        );
    }

    #[test]
    fn dry_run_renders_with_placeholders() {
        let s = spec();
        let trust = render_trust_policy(
            &s,
            Partition::Aws,
            "ACCOUNT_ID",
            "https://oidc.eks.REGION.amazonaws.com/id/CLUSTER_ID",
        )
        .unwrap();
        assert!(trust.contains(
            "arn:aws:iam::ACCOUNT_ID:oidc-provider/oidc.eks.REGION.amazonaws.com/id/CLUSTER_ID"
        ));
        assert!(trust.contains("system:serviceaccount:default:flink"));
        let policy = render_permission_policy(&s, Partition::Aws).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(
            parsed["Statement"][0]["Resource"],
            "arn:aws:s3:::flink-s3-test/test/python_demo_s3.py"
        );

        let mut pod = s.clone();
        pod.mode = IdentityMode::PodIdentity;
        let trust = render_trust_policy(&pod, Partition::Aws, "ACCOUNT_ID", "https://x.example/id")
            .unwrap();
        assert!(trust.contains("pods.eks.amazonaws.com"));

        let mut bad = s;
        bad.role_name = "bad name".into();
        assert!(render_permission_policy(&bad, Partition::Aws).is_err());
    }
}
