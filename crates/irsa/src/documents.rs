//! IAM policy documents as typed data: the permission policy that lets the job read its
//! script, the trust policy that lets one service account assume the role, and their
//! comparison by meaning.
//!
//! Nothing here does IO. The effects in [`crate::Irsa`] build these documents, read back
//! what IAM holds, and compare the two with [`PolicyDocument::same_meaning`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use flink_eks_manifest::{InvalidName, S3Prefix};
use serde::{Deserialize, Serialize};

use crate::spec::S3Grant;

/// What Flink's S3 filesystem does to the objects of its state (checkpoints, savepoints, HA
/// metadata): read, write (multipart uploads included), delete old checkpoints, and abort an
/// upload that failed.
pub const STATE_OBJECT_ACTIONS: [&str; 4] = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
];

/// The policy language version every document here is written in.
pub const POLICY_VERSION: &str = "2012-10-17";

/// The audience that the EKS Pod Identity Webhook puts into projected service account
/// tokens, and the client id the IAM OIDC provider must list.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// The service principal that EKS Pod Identity assumes roles as.
pub const POD_IDENTITY_PRINCIPAL: &str = "pods.eks.amazonaws.com";

/// The session tag EKS Pod Identity sets to the pod's namespace, as a trust policy's
/// condition key.
pub const POD_IDENTITY_NAMESPACE_TAG: &str = "aws:RequestTag/kubernetes-namespace";

/// The session tag EKS Pod Identity sets to the pod's service account, as a trust policy's
/// condition key.
pub const POD_IDENTITY_SERVICE_ACCOUNT_TAG: &str = "aws:RequestTag/kubernetes-service-account";

/// An AWS partition: the first field of every ARN.
///
/// ```
/// use flink_eks_irsa::documents::Partition;
///
/// assert_eq!(Partition::from_region("eu-west-1")?, Partition::Aws);
/// assert_eq!(Partition::from_region("cn-north-1")?.as_str(), "aws-cn");
/// assert_eq!(Partition::from_region("us-gov-west-1")?, Partition::AwsUsGov);
/// # Ok::<(), flink_eks_irsa::documents::UnsupportedRegion>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partition {
    /// The commercial regions (`aws`).
    Aws,
    /// The China regions (`aws-cn`).
    AwsCn,
    /// The AWS GovCloud (US) regions (`aws-us-gov`).
    AwsUsGov,
}

/// A region whose partition this crate does not know how to address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "AWS region {region:?} is in a partition flink-eks does not support: \
     use a commercial (aws), China (aws-cn) or GovCloud (aws-us-gov) region"
)]
pub struct UnsupportedRegion {
    /// The region as given.
    pub region: String,
}

impl Partition {
    /// The partition a region belongs to: `cn-*` is `aws-cn`, `us-gov-*` is `aws-us-gov`,
    /// every other well-formed region is `aws`. The isolated partitions (`us-iso-*`,
    /// `us-isob-*`, `eu-isoe-*`, `us-isof-*`) and malformed names are refused.
    pub fn from_region(region: &str) -> Result<Partition, UnsupportedRegion> {
        let unsupported = || UnsupportedRegion {
            region: region.to_owned(),
        };
        let well_formed = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && region.contains('-');
        if !well_formed
            || region
                .split('-')
                .nth(1)
                .is_some_and(|p| p.starts_with("iso"))
        {
            return Err(unsupported());
        }
        if region.starts_with("cn-") {
            Ok(Partition::AwsCn)
        } else if region.starts_with("us-gov-") {
            Ok(Partition::AwsUsGov)
        } else {
            Ok(Partition::Aws)
        }
    }

    /// The partition as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OpenID Connect issuer of an EKS cluster (`identity.oidc.issuer` of DescribeCluster),
/// kept as host and path without the scheme, the form IAM uses in provider ARNs and in
/// condition keys.
///
/// ```
/// use flink_eks_irsa::documents::OidcIssuer;
///
/// let issuer = OidcIssuer::parse("https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123")?;
/// assert_eq!(issuer.host_path(), "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123");
/// assert_eq!(issuer.url(), "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123");
/// # Ok::<(), flink_eks_manifest::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OidcIssuer {
    host_path: String,
}

impl OidcIssuer {
    /// Parses an issuer given as `https://HOST/PATH` or as `HOST/PATH`.
    pub fn parse(issuer: &str) -> Result<OidcIssuer, InvalidName> {
        let invalid = |rule| InvalidName {
            field: "OIDC issuer",
            value: issuer.to_owned(),
            rule,
        };
        if issuer.contains("://") && !issuer.starts_with("https://") {
            return Err(invalid("an OIDC issuer URL uses https://"));
        }
        let host_path = issuer
            .strip_prefix("https://")
            .unwrap_or(issuer)
            .trim_end_matches('/');
        let host = host_path.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("an OIDC issuer has a host name"));
        }
        if host.contains(':') {
            return Err(invalid("an OIDC issuer URL has no port"));
        }
        if host_path.contains(['?', '#'])
            || host_path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "an OIDC issuer URL has no query, fragment or spaces",
            ));
        }
        Ok(OidcIssuer {
            host_path: host_path.to_owned(),
        })
    }

    /// Host and path, no scheme: `oidc.eks.REGION.amazonaws.com/id/ID`.
    pub fn host_path(&self) -> &str {
        &self.host_path
    }

    /// The issuer URL, `https://` + host and path.
    pub fn url(&self) -> String {
        format!("https://{}", self.host_path)
    }

    /// The ARN of the IAM OIDC identity provider for this issuer in an account.
    pub fn provider_arn(&self, partition: Partition, account: &str) -> String {
        format!(
            "arn:{partition}:iam::{account}:oidc-provider/{}",
            self.host_path
        )
    }
}

impl fmt::Display for OidcIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// A JSON value that IAM accepts either as one item or as a list of items
/// (`"Action": "s3:GetObject"` means the same as `"Action": ["s3:GetObject"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single item.
    One(T),
    /// A list of items.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The items, whichever way they were written.
    pub fn items(&self) -> &[T] {
        match self {
            OneOrMany::One(item) => std::slice::from_ref(item),
            OneOrMany::Many(items) => items,
        }
    }
}

impl<T> From<Vec<T>> for OneOrMany<T> {
    /// One item stays a single value, more become a list (what IAM itself writes).
    fn from(mut items: Vec<T>) -> Self {
        if items.len() == 1
            && let Some(item) = items.pop()
        {
            return OneOrMany::One(item);
        }
        OneOrMany::Many(items)
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement denies.
    Deny,
}

/// Who a statement is about: `"*"` or a map of principal types (`AWS`, `Service`,
/// `Federated`, `CanonicalUser`) to one or more identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Principal {
    /// `"*"`: everyone.
    Any(String),
    /// Principal type to identifiers.
    Typed(BTreeMap<String, OneOrMany<String>>),
}

/// A value in a condition block. IAM accepts strings, booleans and numbers and compares
/// them as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionValue {
    /// A string.
    String(String),
    /// A boolean, as in `"aws:SecureTransport": false`.
    Bool(bool),
    /// A number, as in `"aws:MultiFactorAuthAge": 3600`.
    Number(serde_json::Number),
}

impl ConditionValue {
    fn canonical(&self) -> String {
        match self {
            ConditionValue::String(s) => s.clone(),
            ConditionValue::Bool(b) => b.to_string(),
            ConditionValue::Number(n) => n.to_string(),
        }
    }
}

/// Condition operator (`StringEquals`, ...) to condition key to values.
pub type Conditions = BTreeMap<String, BTreeMap<String, OneOrMany<ConditionValue>>>;

/// One statement of a policy document. Every element of the IAM policy grammar is a
/// field, so that a document written by someone else reads back completely; an element
/// this type does not know makes parsing fail rather than be ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Statement id: a label, with no effect on what the statement means.
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Allow or deny.
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Who (trust policies only).
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Everyone except (trust policies only).
    #[serde(
        rename = "NotPrincipal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_principal: Option<Principal>,
    /// The actions.
    #[serde(rename = "Action", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OneOrMany<String>>,
    /// Every action except these.
    #[serde(rename = "NotAction", default, skip_serializing_if = "Option::is_none")]
    pub not_action: Option<OneOrMany<String>>,
    /// The resources (permission policies only).
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<OneOrMany<String>>,
    /// Every resource except these.
    #[serde(
        rename = "NotResource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_resource: Option<OneOrMany<String>>,
    /// Conditions.
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Conditions>,
}

impl Statement {
    fn allow(actions: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect: Effect::Allow,
            principal: None,
            not_principal: None,
            action: Some(
                actions
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect::<Vec<_>>()
                    .into(),
            ),
            not_action: None,
            resource: None,
            not_resource: None,
            condition: None,
        }
    }
}

/// An IAM policy document (a permission policy or a trust policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// The policy language version, `2012-10-17`.
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Document id.
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The statements.
    #[serde(rename = "Statement")]
    pub statement: OneOrMany<Statement>,
}

/// A policy document that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the policy document is not valid IAM policy JSON: {source}")]
pub struct DocumentError {
    #[source]
    source: serde_json::Error,
}

impl PolicyDocument {
    /// Reads a document as IAM returns it. `GetRole` and `GetPolicyVersion` return the
    /// JSON percent-encoded (RFC 3986); a document that does not start with `{` is decoded
    /// first, so both the encoded and the plain form are accepted.
    pub fn parse_iam(text: &str) -> Result<PolicyDocument, DocumentError> {
        let trimmed = text.trim();
        let decoded;
        let json = if trimmed.starts_with('{') {
            trimmed
        } else {
            decoded = percent_encoding::percent_decode_str(trimmed).decode_utf8_lossy();
            decoded.as_ref()
        };
        serde_json::from_str(json).map_err(|source| DocumentError { source })
    }

    /// The document as compact JSON, the form sent to IAM.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The document as indented JSON, for files a person reads.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Whether two documents grant the same thing. Ignored: whether an element is a
    /// single string or a one-element list; the order of statements, of keys, and of
    /// values in a list; repeated values; statement ids; the letter case of action names
    /// and condition keys (IAM treats both case-insensitively).
    pub fn same_meaning(&self, other: &PolicyDocument) -> bool {
        self.canonical() == other.canonical()
    }

    /// The SHA-256 (lowercase hex) of the document's meaning: its canonical form (the one
    /// [`same_meaning`](Self::same_meaning) compares) as JSON, so that two documents of the
    /// same meaning have the same digest whatever their form.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        // Serialising the canonical form cannot fail: every map key is a string.
        let json = serde_json::to_vec(&self.canonical()).unwrap_or_default();
        Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn canonical(&self) -> CanonicalDocument {
        let mut statements: Vec<CanonicalStatement> = self
            .statement
            .items()
            .iter()
            .map(CanonicalStatement::from)
            .collect();
        statements.sort();
        statements.dedup();
        CanonicalDocument {
            version: self
                .version
                .clone()
                .unwrap_or_else(|| "2008-10-17".to_owned()),
            statements,
        }
    }
}

/// What replacing one permission policy with another changes, statement by statement, each
/// as one line (`Allow s3:putobject on arn:aws:s3:::b/*`): the statements only `found` has
/// (removed) and those only `wanted` has (added). A document IAM returned that does not
/// parse (`None`) is removed as a whole.
pub fn statement_changes(
    found: Option<&PolicyDocument>,
    wanted: &PolicyDocument,
) -> (Vec<String>, Vec<String>) {
    let Some(found) = found else {
        return (
            vec!["an unreadable document".to_owned()],
            wanted
                .canonical()
                .statements
                .iter()
                .map(ToString::to_string)
                .collect(),
        );
    };
    let (found, wanted) = (found.canonical(), wanted.canonical());
    let only = |a: &CanonicalDocument, b: &CanonicalDocument| -> Vec<String> {
        a.statements
            .iter()
            .filter(|s| !b.statements.contains(s))
            .map(ToString::to_string)
            .collect()
    };
    (only(&found, &wanted), only(&wanted, &found))
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct CanonicalDocument {
    version: String,
    statements: Vec<CanonicalStatement>,
}

type CanonicalPrincipal = Option<BTreeMap<String, BTreeSet<String>>>;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct CanonicalStatement {
    effect: Effect,
    principal: CanonicalPrincipal,
    not_principal: CanonicalPrincipal,
    action: Option<BTreeSet<String>>,
    not_action: Option<BTreeSet<String>>,
    resource: Option<BTreeSet<String>>,
    not_resource: Option<BTreeSet<String>>,
    condition: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl fmt::Display for CanonicalStatement {
    /// `Allow s3:getobject,s3:putobject on arn:… if StringLike s3:prefix=jobs/*`, with
    /// `not` before the elements a statement negates.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        write!(f, "{:?}", self.effect)?;
        match (&self.action, &self.not_action) {
            (Some(actions), _) => write!(f, " {}", list(actions))?,
            (None, Some(actions)) => write!(f, " all but {}", list(actions))?,
            (None, None) => {}
        }
        match (&self.resource, &self.not_resource) {
            (Some(resources), _) => write!(f, " on {}", list(resources))?,
            (None, Some(resources)) => write!(f, " on all but {}", list(resources))?,
            (None, None) => {}
        }
        for (principal, word) in [
            (&self.principal, "for"),
            (&self.not_principal, "for all but"),
        ] {
            if let Some(map) = principal {
                let ids: Vec<String> = map.values().map(list).collect();
                write!(f, " {word} {}", ids.join(","))?;
            }
        }
        let mut first = true;
        for (operator, keys) in &self.condition {
            for (key, values) in keys {
                let word = if first { "if" } else { "and" };
                first = false;
                write!(f, " {word} {operator} {key}={}", list(values))?;
            }
        }
        Ok(())
    }
}

fn canonical_principal(principal: Option<&Principal>) -> CanonicalPrincipal {
    principal.map(|p| match p {
        // "*" and {"AWS": "*"} mean the same.
        Principal::Any(star) => {
            BTreeMap::from([("AWS".to_owned(), BTreeSet::from([star.clone()]))])
        }
        Principal::Typed(map) => map
            .iter()
            .map(|(kind, ids)| (kind.clone(), ids.items().iter().cloned().collect()))
            .collect(),
    })
}

fn canonical_set(values: Option<&OneOrMany<String>>, fold_case: bool) -> Option<BTreeSet<String>> {
    values.map(|v| {
        v.items()
            .iter()
            .map(|s| {
                if fold_case {
                    s.to_ascii_lowercase()
                } else {
                    s.clone()
                }
            })
            .collect()
    })
}

impl From<&Statement> for CanonicalStatement {
    fn from(s: &Statement) -> Self {
        let mut condition: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (operator, keys) in s.condition.iter().flatten() {
            let entry = condition.entry(operator.clone()).or_default();
            for (key, values) in keys {
                entry
                    .entry(key.to_ascii_lowercase())
                    .or_default()
                    .extend(values.items().iter().map(ConditionValue::canonical));
            }
        }
        CanonicalStatement {
            effect: s.effect,
            principal: canonical_principal(s.principal.as_ref()),
            not_principal: canonical_principal(s.not_principal.as_ref()),
            action: canonical_set(s.action.as_ref(), true),
            not_action: canonical_set(s.not_action.as_ref(), true),
            resource: canonical_set(s.resource.as_ref(), false),
            not_resource: canonical_set(s.not_resource.as_ref(), false),
            condition,
        }
    }
}

/// The permission policy: read access to the job's script and nothing else.
///
/// ```
/// use flink_eks_irsa::documents::{Partition, PermissionPolicy};
/// use flink_eks_irsa::S3Grant;
/// use flink_eks_manifest::S3Location;
///
/// let grant = S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py")?);
/// let policy = PermissionPolicy::new(Partition::Aws, &grant, false);
/// let json = policy.to_pretty_json();
/// assert!(json.contains(r#""Resource": "arn:aws:s3:::flink-s3-test/test/job.py""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionPolicy(PolicyDocument);

impl PermissionPolicy {
    /// `s3:GetObject` on `arn:PARTITION:s3:::BUCKET/KEY` (or `BUCKET/PREFIX/*`), never on
    /// the bare bucket ARN, which grants no object access. With `list_bucket`, also
    /// `s3:ListBucket` on the bucket ARN limited by an `s3:prefix` condition to the same
    /// key or prefix, so that S3 answers 404 and not 403 for a missing key.
    pub fn new(partition: Partition, grant: &S3Grant, list_bucket: bool) -> PermissionPolicy {
        let bucket_arn = format!("arn:{partition}:s3:::{}", grant.bucket());
        let (object_resource, list_prefix) = match grant {
            S3Grant::Object(location) => (
                format!("{bucket_arn}/{}", location.key()),
                location.key().to_owned(),
            ),
            S3Grant::Prefix { prefix, .. } => {
                let prefix = prefix.trim_end_matches('/');
                if prefix.is_empty() {
                    (format!("{bucket_arn}/*"), "*".to_owned())
                } else {
                    (format!("{bucket_arn}/{prefix}/*"), format!("{prefix}/*"))
                }
            }
        };
        let mut read = Statement::allow(&["s3:GetObject"]);
        read.sid = Some("ReadFlinkJobScript".to_owned());
        read.resource = Some(OneOrMany::One(object_resource));
        let mut statements = vec![read];
        if list_bucket {
            let mut list = Statement::allow(&["s3:ListBucket"]);
            list.sid = Some("ListFlinkJobScriptPrefix".to_owned());
            list.resource = Some(OneOrMany::One(bucket_arn));
            list.condition = Some(BTreeMap::from([(
                "StringLike".to_owned(),
                BTreeMap::from([(
                    "s3:prefix".to_owned(),
                    OneOrMany::One(ConditionValue::String(list_prefix)),
                )]),
            )]));
            statements.push(list);
        }
        PermissionPolicy(PolicyDocument {
            version: Some(POLICY_VERSION.to_owned()),
            id: None,
            statement: OneOrMany::Many(statements),
        })
    }

    /// Adds what a job's state under `state` needs, and nothing else: the
    /// [`STATE_OBJECT_ACTIONS`] on `arn:PARTITION:s3:::BUCKET/PREFIX/*`, and `s3:ListBucket` on
    /// the bucket limited by a `StringLike` `s3:prefix` condition to `PREFIX/*` (S3A lists a
    /// folder to find its files and to tell a missing key from a forbidden one).
    ///
    /// ```
    /// use flink_eks_irsa::documents::{Partition, PermissionPolicy};
    /// use flink_eks_irsa::S3Grant;
    /// use flink_eks_manifest::{S3Location, S3Prefix};
    ///
    /// let grant = S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py")?);
    /// let state = S3Prefix::parse("s3://flink-s3-test/flink-eks/default/job/state/")?;
    /// let policy = PermissionPolicy::new(Partition::Aws, &grant, false).with_state(Partition::Aws, &state);
    /// let json = policy.to_pretty_json();
    /// assert!(json.contains(r#""Resource": "arn:aws:s3:::flink-s3-test/flink-eks/default/job/state/*""#));
    /// assert!(json.contains(r#""s3:prefix": "flink-eks/default/job/state/*""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_state(mut self, partition: Partition, state: &S3Prefix) -> PermissionPolicy {
        let bucket_arn = format!("arn:{partition}:s3:::{}", state.bucket());
        let mut objects = Statement::allow(&STATE_OBJECT_ACTIONS);
        objects.sid = Some("FlinkStateObjects".to_owned());
        objects.resource = Some(OneOrMany::One(format!("{bucket_arn}/{}*", state.prefix())));
        let mut list = Statement::allow(&["s3:ListBucket"]);
        list.sid = Some("FlinkStateList".to_owned());
        list.resource = Some(OneOrMany::One(bucket_arn));
        list.condition = Some(BTreeMap::from([(
            "StringLike".to_owned(),
            BTreeMap::from([(
                "s3:prefix".to_owned(),
                OneOrMany::One(ConditionValue::String(format!("{}*", state.prefix()))),
            )]),
        )]));
        let mut statements = self.0.statement.items().to_vec();
        statements.extend([objects, list]);
        self.0.statement = OneOrMany::Many(statements);
        self
    }

    /// The document.
    pub fn document(&self) -> &PolicyDocument {
        &self.0
    }

    /// Indented JSON, for `iam-policy.json`.
    pub fn to_pretty_json(&self) -> String {
        self.0.to_pretty_json()
    }
}

/// The trust policy: who may assume the role.
///
/// ```
/// use flink_eks_irsa::documents::{OidcIssuer, Partition, TrustPolicy};
///
/// let issuer = OidcIssuer::parse("https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE")?;
/// let trust = TrustPolicy::irsa(Partition::Aws, "123456789012", &issuer, "default", "flink");
/// let json = trust.to_pretty_json();
/// assert!(json.contains(
///     r#""oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub": "system:serviceaccount:default:flink""#
/// ));
/// # Ok::<(), flink_eks_manifest::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustPolicy(PolicyDocument);

impl TrustPolicy {
    /// IAM roles for service accounts: the cluster's OIDC provider may call
    /// `sts:AssumeRoleWithWebIdentity` for tokens whose `sub` is exactly
    /// `system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT` and whose `aud` is
    /// `sts.amazonaws.com`. `account` is not checked, so that a dry run can pass a
    /// placeholder.
    pub fn irsa(
        partition: Partition,
        account: &str,
        issuer: &OidcIssuer,
        namespace: &str,
        service_account: &str,
    ) -> TrustPolicy {
        let host_path = issuer.host_path();
        let mut statement = Statement::allow(&["sts:AssumeRoleWithWebIdentity"]);
        statement.principal = Some(Principal::Typed(BTreeMap::from([(
            "Federated".to_owned(),
            OneOrMany::One(issuer.provider_arn(partition, account)),
        )])));
        let string = |s: String| OneOrMany::One(ConditionValue::String(s));
        statement.condition = Some(BTreeMap::from([(
            "StringEquals".to_owned(),
            BTreeMap::from([
                (
                    format!("{host_path}:sub"),
                    string(format!(
                        "system:serviceaccount:{namespace}:{service_account}"
                    )),
                ),
                (format!("{host_path}:aud"), string(STS_AUDIENCE.to_owned())),
            ]),
        )]));
        TrustPolicy(PolicyDocument {
            version: Some(POLICY_VERSION.to_owned()),
            id: None,
            statement: OneOrMany::Many(vec![statement]),
        })
    }

    /// EKS Pod Identity: the `pods.eks.amazonaws.com` service may call `sts:AssumeRole`
    /// and `sts:TagSession` for sessions tagged with exactly this namespace and service
    /// account. Pod Identity tags every session it asks for (`kubernetes-namespace`,
    /// `kubernetes-service-account`), so the `aws:RequestTag/…` conditions AWS documents for
    /// it keep an association made for another service account in the account from using
    /// the role.
    pub fn pod_identity(namespace: &str, service_account: &str) -> TrustPolicy {
        let mut statement = Statement::allow(&["sts:AssumeRole", "sts:TagSession"]);
        statement.principal = Some(Principal::Typed(BTreeMap::from([(
            "Service".to_owned(),
            OneOrMany::One(POD_IDENTITY_PRINCIPAL.to_owned()),
        )])));
        let string = |s: &str| OneOrMany::One(ConditionValue::String(s.to_owned()));
        statement.condition = Some(BTreeMap::from([(
            "StringEquals".to_owned(),
            BTreeMap::from([
                (POD_IDENTITY_NAMESPACE_TAG.to_owned(), string(namespace)),
                (
                    POD_IDENTITY_SERVICE_ACCOUNT_TAG.to_owned(),
                    string(service_account),
                ),
            ]),
        )]));
        TrustPolicy(PolicyDocument {
            version: Some(POLICY_VERSION.to_owned()),
            id: None,
            statement: OneOrMany::Many(vec![statement]),
        })
    }

    /// The document.
    pub fn document(&self) -> &PolicyDocument {
        &self.0
    }

    /// Indented JSON, for `trust-policy.json`.
    pub fn to_pretty_json(&self) -> String {
        self.0.to_pretty_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_eks_manifest::S3Location;
    use serde_json::json;

    fn doc(value: serde_json::Value) -> PolicyDocument {
        serde_json::from_value(value).unwrap()
    }

    fn issuer() -> OidcIssuer {
        OidcIssuer::parse(
            "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        )
        .unwrap()
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(Partition::from_region("us-east-1").unwrap(), Partition::Aws);
        assert_eq!(
            Partition::from_region("ap-northeast-2").unwrap(),
            Partition::Aws
        );
        assert_eq!(
            Partition::from_region("cn-northwest-1").unwrap(),
            Partition::AwsCn
        );
        assert_eq!(
            Partition::from_region("us-gov-east-1").unwrap(),
            Partition::AwsUsGov
        );
        for bad in [
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "",
            "US-EAST-1",
            "useast1",
        ] {
            let err = Partition::from_region(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn object_grant_names_the_object_not_the_bucket() {
        let grant = S3Grant::Object(
            S3Location::parse("s3://flink-s3-test/test/python_demo_s3.py").unwrap(),
        );
        let policy = PermissionPolicy::new(Partition::Aws, &grant, false);
        let value = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            value,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "ReadFlinkJobScript",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::flink-s3-test/test/python_demo_s3.py"
                }]
            })
        );
        // The common mistake: the bare bucket ARN grants nothing, and appears nowhere.
        assert!(
            !policy
                .to_pretty_json()
                .contains(r#""arn:aws:s3:::flink-s3-test""#)
        );
    }

    #[test]
    fn list_bucket_is_limited_to_the_key_or_prefix() {
        let grant = S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py").unwrap());
        let policy = PermissionPolicy::new(Partition::AwsCn, &grant, true);
        let value = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            value["Statement"][1],
            json!({
                "Sid": "ListFlinkJobScriptPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws-cn:s3:::flink-s3-test",
                "Condition": {"StringLike": {"s3:prefix": "test/job.py"}}
            })
        );
        assert_eq!(
            value["Statement"][0]["Resource"],
            "arn:aws-cn:s3:::flink-s3-test/test/job.py"
        );

        let prefix = S3Grant::prefix("flink-s3-test", "jobs/").unwrap();
        let value =
            serde_json::to_value(PermissionPolicy::new(Partition::Aws, &prefix, true)).unwrap();
        assert_eq!(
            value["Statement"][0]["Resource"],
            "arn:aws:s3:::flink-s3-test/jobs/*"
        );
        assert_eq!(
            value["Statement"][1]["Condition"]["StringLike"]["s3:prefix"],
            "jobs/*"
        );

        let whole = S3Grant::prefix("flink-s3-test", "").unwrap();
        let value =
            serde_json::to_value(PermissionPolicy::new(Partition::Aws, &whole, false)).unwrap();
        assert_eq!(
            value["Statement"][0]["Resource"],
            "arn:aws:s3:::flink-s3-test/*"
        );
    }

    fn state_policy() -> PermissionPolicy {
        let grant = S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py").unwrap());
        let state = S3Prefix::parse("s3://flink-state/flink-eks/default/job/state/").unwrap();
        PermissionPolicy::new(Partition::AwsCn, &grant, false).with_state(Partition::AwsCn, &state)
    }

    #[test]
    fn state_adds_exactly_two_statements_on_the_prefix() {
        let value = serde_json::to_value(state_policy()).unwrap();
        assert_eq!(
            value,
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadFlinkJobScript",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws-cn:s3:::flink-s3-test/test/job.py"
                    },
                    {
                        "Sid": "FlinkStateObjects",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                        "Resource": "arn:aws-cn:s3:::flink-state/flink-eks/default/job/state/*"
                    },
                    {
                        "Sid": "FlinkStateList",
                        "Effect": "Allow",
                        "Action": "s3:ListBucket",
                        "Resource": "arn:aws-cn:s3:::flink-state",
                        "Condition": {"StringLike": {"s3:prefix": "flink-eks/default/job/state/*"}}
                    }
                ]
            })
        );
    }

    #[test]
    fn statement_changes_name_what_is_removed_and_added() {
        let ours = state_policy();
        // A person widened the policy by hand: the object statement on the whole bucket.
        let mut widened = serde_json::to_value(&ours).unwrap();
        widened["Statement"][1]["Resource"] = json!("arn:aws-cn:s3:::flink-state/*");
        widened["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}));
        let widened = doc(widened);
        let (removed, added) = statement_changes(Some(&widened), ours.document());
        assert_eq!(
            removed,
            [
                "Allow s3:* on *",
                "Allow s3:abortmultipartupload,s3:deleteobject,s3:getobject,s3:putobject on arn:aws-cn:s3:::flink-state/*",
            ]
        );
        assert_eq!(
            added,
            [
                "Allow s3:abortmultipartupload,s3:deleteobject,s3:getobject,s3:putobject on arn:aws-cn:s3:::flink-state/flink-eks/default/job/state/*"
            ]
        );
        let (removed, added) = statement_changes(Some(ours.document()), ours.document());
        assert!(removed.is_empty() && added.is_empty());
        let (removed, added) = statement_changes(None, ours.document());
        assert_eq!(removed, ["an unreadable document"]);
        assert_eq!(added.len(), 3);
        assert!(
            added[2].ends_with("if StringLike s3:prefix=flink-eks/default/job/state/*"),
            "{added:?}"
        );
    }

    #[test]
    fn irsa_trust_policy_is_scoped_to_one_service_account() {
        let trust = TrustPolicy::irsa(
            Partition::AwsUsGov,
            "123456789012",
            &issuer(),
            "flink-jobs",
            "flink",
        );
        let host = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
        assert_eq!(
            serde_json::to_value(&trust).unwrap(),
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Federated": format!("arn:aws-us-gov:iam::123456789012:oidc-provider/{host}")},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {
                        format!("{host}:sub"): "system:serviceaccount:flink-jobs:flink",
                        format!("{host}:aud"): "sts.amazonaws.com"
                    }}
                }]
            })
        );
    }

    #[test]
    fn pod_identity_trust_policy_is_scoped_to_one_service_account() {
        let value = serde_json::to_value(TrustPolicy::pod_identity("flink-jobs", "flink")).unwrap();
        assert_eq!(
            value["Statement"][0],
            json!({
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"StringEquals": {
                    "aws:RequestTag/kubernetes-namespace": "flink-jobs",
                    "aws:RequestTag/kubernetes-service-account": "flink"
                }}
            })
        );
    }

    #[test]
    fn pod_identity_trust_policies_compare_by_meaning() {
        let ours = TrustPolicy::pod_identity("default", "flink");
        // The form of AWS's own example: lists, a statement id, keys in another case.
        let documented = doc(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "AllowEksAuthToAssumeRoleForPodIdentity",
                "Effect": "Allow",
                "Principal": {"Service": ["pods.eks.amazonaws.com"]},
                "Action": ["sts:TagSession", "sts:AssumeRole"],
                "Condition": {"StringEquals": {
                    "aws:RequestTag/Kubernetes-Namespace": ["default"],
                    "aws:RequestTag/kubernetes-service-account": ["flink"]
                }}
            }]
        }));
        assert!(ours.document().same_meaning(&documented));
        // The unscoped policy, another namespace, another service account: all differ.
        let unscoped = doc(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"]
            }]
        }));
        assert!(!ours.document().same_meaning(&unscoped));
        for other in [
            TrustPolicy::pod_identity("other", "flink"),
            TrustPolicy::pod_identity("default", "spark"),
        ] {
            assert!(!ours.document().same_meaning(other.document()), "{other:?}");
        }
    }

    #[test]
    fn issuers() {
        let i = issuer();
        assert_eq!(
            i.provider_arn(Partition::Aws, "111122223333"),
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
        );
        assert_eq!(
            OidcIssuer::parse("oidc.example.com/id/1/").unwrap().url(),
            "https://oidc.example.com/id/1"
        );
        for bad in [
            "http://oidc.example.com",
            "https://",
            "https://h:443/x",
            "https://h/x?y=1",
            "",
        ] {
            assert_eq!(
                OidcIssuer::parse(bad).unwrap_err().field,
                "OIDC issuer",
                "{bad}"
            );
        }
    }

    #[test]
    fn same_meaning_ignores_form() {
        let ours = PermissionPolicy::new(
            Partition::Aws,
            &S3Grant::Object(S3Location::parse("s3://b-1/k.py").unwrap()),
            true,
        );
        // What another tool (or the console) might write for the same grant.
        let theirs = doc(json!({
            "Statement": [
                {
                    "Condition": {"StringLike": {"S3:Prefix": ["k.py", "k.py"]}},
                    "Resource": ["arn:aws:s3:::b-1"],
                    "Action": ["S3:ListBucket"],
                    "Effect": "Allow"
                },
                {"Effect": "Allow", "Action": ["s3:getobject"], "Resource": "arn:aws:s3:::b-1/k.py"}
            ],
            "Version": "2012-10-17"
        }));
        assert!(ours.document().same_meaning(&theirs));
        assert!(theirs.same_meaning(ours.document()));
        assert_eq!(ours.document().digest(), theirs.digest());
        assert_eq!(ours.document().digest().len(), 64);
    }

    #[test]
    fn same_meaning_sees_real_differences() {
        let base = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b-1/k.py"}]
        });
        let a = doc(base.clone());
        let mut changes = Vec::new();
        let mut other_key = base.clone();
        other_key["Statement"][0]["Resource"] = json!("arn:aws:s3:::b-1/K.py"); // keys are case-sensitive
        changes.push(other_key);
        let mut deny = base.clone();
        deny["Statement"][0]["Effect"] = json!("Deny");
        changes.push(deny);
        let mut more = base.clone();
        more["Statement"][0]["Action"] = json!(["s3:GetObject", "s3:PutObject"]);
        changes.push(more);
        let mut conditioned = base.clone();
        conditioned["Statement"][0]["Condition"] = json!({"Bool": {"aws:SecureTransport": true}});
        changes.push(conditioned);
        let mut old_version = base.clone();
        old_version["Version"] = json!("2008-10-17");
        changes.push(old_version);
        let mut extra = base.clone();
        extra["Statement"].as_array_mut().unwrap().push(
            json!({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b-1"}),
        );
        changes.push(extra);
        for change in changes {
            assert!(!a.same_meaning(&doc(change.clone())), "{change}");
            assert_ne!(a.digest(), doc(change.clone()).digest(), "{change}");
        }
    }

    #[test]
    fn trust_policies_compare_across_forms() {
        let ours = TrustPolicy::irsa(
            Partition::Aws,
            "123456789012",
            &issuer(),
            "default",
            "flink",
        );
        let host = issuer().host_path().to_owned();
        let theirs = doc(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Condition": {"StringEquals": {
                    format!("{host}:aud"): ["sts.amazonaws.com"],
                    format!("{host}:sub"): "system:serviceaccount:default:flink"
                }},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Principal": {"Federated": [format!("arn:aws:iam::123456789012:oidc-provider/{host}")]},
                "Effect": "Allow",
                "Sid": "eksctl"
            }
        }));
        assert!(ours.document().same_meaning(&theirs));
        let other_sa = TrustPolicy::irsa(
            Partition::Aws,
            "123456789012",
            &issuer(),
            "default",
            "spark",
        );
        assert!(!ours.document().same_meaning(other_sa.document()));
        assert!(
            !ours
                .document()
                .same_meaning(TrustPolicy::pod_identity("default", "flink").document())
        );
    }

    #[test]
    fn iam_documents_are_percent_decoded() {
        let trust = TrustPolicy::irsa(
            Partition::Aws,
            "123456789012",
            &issuer(),
            "default",
            "flink",
        );
        // What GetRole returns: the JSON percent-encoded, spaces as %20.
        let encoded: String = percent_encoding::utf8_percent_encode(
            &serde_json::to_string_pretty(&trust).unwrap(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert!(encoded.starts_with("%7B"));
        let read = PolicyDocument::parse_iam(&encoded).unwrap();
        assert!(read.same_meaning(trust.document()));
        // The plain form (what moto's GetPolicyVersion returns) reads too, and a '%' in
        // plain JSON is left alone.
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b-1/100%25.py"}]}"#;
        let read = PolicyDocument::parse_iam(plain).unwrap();
        assert_eq!(
            read.statement.items()[0].resource.as_ref().unwrap().items()[0],
            "arn:aws:s3:::b-1/100%25.py"
        );
    }

    #[test]
    fn unknown_elements_fail_to_parse_rather_than_vanish() {
        // An element this type does not model must not be dropped silently: the document
        // then reads as different from ours (drift), never as the same.
        let bogus = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Bogus":1}]}"#;
        assert!(PolicyDocument::parse_iam(bogus).is_err());
        let top = r#"{"Version":"2012-10-17","Extra":true,"Statement":[]}"#;
        assert!(PolicyDocument::parse_iam(top).is_err());
        assert!(PolicyDocument::parse_iam("not json").is_err());
    }

    #[test]
    fn documents_round_trip_through_json() {
        let trust = TrustPolicy::irsa(
            Partition::Aws,
            "123456789012",
            &issuer(),
            "default",
            "flink",
        );
        let back: PolicyDocument = serde_json::from_str(&trust.document().to_json()).unwrap();
        assert_eq!(&back, trust.document());
        let pretty: PolicyDocument = serde_json::from_str(&trust.to_pretty_json()).unwrap();
        assert_eq!(&pretty, trust.document());
    }
}
