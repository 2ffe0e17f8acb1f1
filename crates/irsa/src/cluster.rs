//! What EKS says of a cluster that stays true for the cluster's whole life, so that a caller
//! may keep it between runs and spare `eks:DescribeCluster` (and the round trip it puts in
//! front of every read that needs the account or the issuer).
//!
//! A remembered identity only ever confirms: [`crate::Irsa::plan`] uses it for reads, and when
//! what it read would lead to any write or blocker, it asks EKS again before returning the
//! plan (see [`crate::Irsa::with_known_cluster`]). No write is ever planned from it alone.

use serde::{Deserialize, Serialize};

use crate::decide::arn_account;
use crate::documents::OidcIssuer;

/// A cluster's name, region, ARN and OIDC issuer, as `eks:DescribeCluster` returned them.
/// None of them changes while the cluster exists: a cluster made again under the same name
/// has a new issuer (and a new API server endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The cluster's name.
    pub name: String,
    /// The region it is in.
    pub region: String,
    /// Its ARN, which names the account.
    pub arn: String,
    /// Its OIDC issuer URL (`https://oidc.eks.REGION.amazonaws.com/id/ID`); none when the
    /// cluster has none.
    pub issuer: Option<String>,
}

/// What the reads need of a cluster: its account and issuer (`None`: no issuer).
pub(crate) type ClusterFacts = (String, Option<OidcIssuer>);

impl ClusterIdentity {
    /// The account and issuer, when this identity is the cluster `name` in `region` and both
    /// read well; `None` otherwise (then EKS is asked).
    pub(crate) fn facts_for(&self, name: &str, region: &str) -> Option<ClusterFacts> {
        if self.name != name || self.region != region {
            return None;
        }
        let account = arn_account(&self.arn)?.to_owned();
        let issuer = match &self.issuer {
            Some(url) => Some(OidcIssuer::parse(url).ok()?),
            None => None,
        };
        Some((account, issuer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ClusterIdentity {
        ClusterIdentity {
            name: "flink-demo".into(),
            region: "eu-west-1".into(),
            arn: "arn:aws:eks:eu-west-1:123456789012:cluster/flink-demo".into(),
            issuer: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF".into()),
        }
    }

    #[test]
    fn facts_are_the_arns_account_and_the_parsed_issuer() {
        let (account, issuer) = identity().facts_for("flink-demo", "eu-west-1").unwrap();
        assert_eq!(account, "123456789012");
        assert_eq!(
            issuer.unwrap().url(),
            "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
        );
        let without = ClusterIdentity {
            issuer: None,
            ..identity()
        };
        assert_eq!(
            without.facts_for("flink-demo", "eu-west-1"),
            Some(("123456789012".into(), None))
        );
    }

    #[test]
    fn another_cluster_or_region_or_an_unreadable_identity_gives_no_facts() {
        assert_eq!(identity().facts_for("other", "eu-west-1"), None);
        assert_eq!(identity().facts_for("flink-demo", "us-east-1"), None);
        let bad_arn = ClusterIdentity {
            arn: "cluster/flink-demo".into(),
            ..identity()
        };
        assert_eq!(bad_arn.facts_for("flink-demo", "eu-west-1"), None);
        let bad_issuer = ClusterIdentity {
            issuer: Some("http://not-https".into()),
            ..identity()
        };
        assert_eq!(bad_issuer.facts_for("flink-demo", "eu-west-1"), None);
    }
}
