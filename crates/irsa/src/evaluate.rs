//! A small evaluator of identity-based permission policies: does a document allow one
//! request (an action on a resource, with its request context such as `s3:prefix`)? It
//! covers what the documents of this crate are made of, so that tests can ask what a policy
//! grants rather than how it is spelled. Pure: no IO.
//!
//! What it models of IAM's evaluation logic: an explicit `Deny` wins over any `Allow`; with
//! no statement that applies the answer is an implicit deny; `Action`/`NotAction` match
//! case-insensitively with the wildcards `*` and `?`; `Resource`/`NotResource` match
//! case-sensitively with the same wildcards; every condition of a statement must hold.
//! Conditions: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringLike`,
//! `StringNotLike`, each also with `IfExists`, keys matched case-insensitively; a key the
//! request does not carry fails the positive operators and satisfies the negated ones.
//! Anything else (another operator, a policy variable) makes an `Allow` not apply and a
//! `Deny` apply, so the evaluator never grants more than IAM would.

use std::collections::BTreeMap;

use crate::documents::{Effect, OneOrMany, PolicyDocument, Statement};

/// One request to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The action, `s3:PutObject`.
    pub action: String,
    /// The resource's ARN, `arn:aws:s3:::bucket/key`.
    pub resource: String,
    /// The request context, condition key to value (`s3:prefix` → `state/`).
    pub context: BTreeMap<String, String>,
}

impl Request {
    /// `action` on `resource`, with no context.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// The same request with one more context key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Request {
        self.context.insert(key.into(), value.into());
        self
    }
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

/// Judges `request` against `policy`.
///
/// ```
/// use flink_eks_irsa::evaluate::{Decision, Request, evaluate};
/// use flink_eks_irsa::documents::PolicyDocument;
///
/// let policy = PolicyDocument::parse_iam(
///     r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b-1/jobs/*"}]}"#,
/// )?;
/// assert_eq!(evaluate(&policy, &Request::new("s3:GetObject", "arn:aws:s3:::b-1/jobs/a.py")), Decision::Allow);
/// assert_eq!(evaluate(&policy, &Request::new("s3:PutObject", "arn:aws:s3:::b-1/jobs/a.py")), Decision::ImplicitDeny);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn evaluate(policy: &PolicyDocument, request: &Request) -> Decision {
    let mut allowed = false;
    for statement in policy.statement.items() {
        let deny = statement.effect == Effect::Deny;
        if !applies(statement, request, deny) {
            continue;
        }
        if deny {
            return Decision::ExplicitDeny;
        }
        allowed = true;
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Whether a statement applies to the request. `unknown` is the answer for what the
/// evaluator cannot judge: `true` for a Deny, `false` for an Allow.
fn applies(statement: &Statement, request: &Request, unknown: bool) -> bool {
    let action = |patterns: &OneOrMany<String>| {
        patterns.items().iter().any(|p| {
            wildcard_match(
                &p.to_ascii_lowercase(),
                &request.action.to_ascii_lowercase(),
            )
        })
    };
    let resource = |patterns: &OneOrMany<String>| {
        patterns
            .items()
            .iter()
            .any(|p| wildcard_match(p, &request.resource))
    };
    let action_matches = match (&statement.action, &statement.not_action) {
        (Some(actions), None) => action(actions),
        (None, Some(actions)) => !action(actions),
        _ => return unknown,
    };
    let resource_matches = match (&statement.resource, &statement.not_resource) {
        (Some(resources), None) => resource(resources),
        (None, Some(resources)) => !resource(resources),
        _ => return unknown,
    };
    if !action_matches || !resource_matches {
        return false;
    }
    let mut conditions = statement.condition.iter().flatten();
    conditions.all(|(operator, keys)| {
        keys.iter().all(|(key, values)| {
            let values: Vec<String> = values
                .items()
                .iter()
                .map(|v| match serde_json::to_value(v) {
                    Ok(serde_json::Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(_) => String::new(),
                })
                .collect();
            let found = request
                .context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str());
            condition_holds(operator, found, &values).unwrap_or(unknown)
        })
    })
}

/// Whether one condition holds for the value the request carries (`None`: the key is
/// absent), or `None` when the operator or a value is beyond this evaluator.
fn condition_holds(operator: &str, found: Option<&str>, values: &[String]) -> Option<bool> {
    if values.iter().any(|v| v.contains("${")) {
        return None;
    }
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let Some(found) = found else {
        let negated = matches!(base, "StringNotEquals" | "StringNotLike");
        return match base {
            "StringEquals"
            | "StringNotEquals"
            | "StringEqualsIgnoreCase"
            | "StringLike"
            | "StringNotLike" => Some(if_exists || negated),
            _ => None,
        };
    };
    let any = |test: &dyn Fn(&str) -> bool| values.iter().any(|v| test(v));
    Some(match base {
        "StringEquals" => any(&|v| v == found),
        "StringNotEquals" => !any(&|v| v == found),
        "StringEqualsIgnoreCase" => any(&|v| v.eq_ignore_ascii_case(found)),
        "StringLike" => any(&|v| wildcard_match(v, found)),
        "StringNotLike" => !any(&|v| wildcard_match(v, found)),
        _ => return None,
    })
}

/// IAM's wildcard match: `*` is any run of characters (none included), `?` any one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{Partition, PermissionPolicy, STATE_OBJECT_ACTIONS};
    use crate::spec::S3Grant;
    use flink_eks_manifest::{S3Location, S3Prefix};
    use serde_json::json;

    const STATE: &str = "flink-eks/default/job/state/";

    fn state_policy(list_bucket: bool) -> PolicyDocument {
        let script = S3Grant::Object(S3Location::parse("s3://flink-s3-test/test/job.py").unwrap());
        let state = S3Prefix::parse(&format!("s3://flink-s3-test/{STATE}")).unwrap();
        PermissionPolicy::new(Partition::Aws, &script, list_bucket)
            .with_state(Partition::Aws, &state)
            .document()
            .clone()
    }

    fn object(key: &str) -> String {
        format!("arn:aws:s3:::flink-s3-test/{key}")
    }

    #[test]
    fn the_state_prefix_grants_the_five_actions() {
        let policy = state_policy(false);
        for action in STATE_OBJECT_ACTIONS {
            for key in [
                "checkpoints/abc/chk-1/_metadata",
                "savepoints/savepoint-1/x",
                "ha/job-1",
            ] {
                let request = Request::new(action, object(&format!("{STATE}{key}")));
                assert_eq!(evaluate(&policy, &request), Decision::Allow, "{request:?}");
            }
        }
        for prefix in [STATE, &format!("{STATE}checkpoints/")] {
            let list = Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test")
                .with("s3:prefix", prefix);
            assert_eq!(evaluate(&policy, &list), Decision::Allow, "{list:?}");
        }
        // The script stays readable.
        assert_eq!(
            evaluate(
                &policy,
                &Request::new("s3:GetObject", object("test/job.py"))
            ),
            Decision::Allow
        );
    }

    #[test]
    fn nothing_outside_the_prefix_is_granted() {
        let policy = state_policy(true);
        let denied = [
            // A key outside the prefix, and one that only shares its leading characters.
            Request::new("s3:PutObject", object("flink-eks/default/other/state/x")),
            Request::new("s3:GetObject", object("flink-eks/default/job/state-old/x")),
            Request::new("s3:DeleteObject", object("flink-eks/default/job/state")),
            // Another bucket, same key.
            Request::new(
                "s3:PutObject",
                format!("arn:aws:s3:::other-bucket/{STATE}x"),
            ),
            Request::new("s3:ListBucket", "arn:aws:s3:::other-bucket").with("s3:prefix", STATE),
            // Listing without a prefix, or with another one.
            Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test"),
            Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test").with("s3:prefix", ""),
            Request::new("s3:ListBucket", "arn:aws:s3:::flink-s3-test")
                .with("s3:prefix", "flink-eks/default/"),
            // The script may be read, never written or deleted.
            Request::new("s3:PutObject", object("test/job.py")),
            Request::new("s3:DeleteObject", object("test/job.py")),
            // Actions the policy never names.
            Request::new("s3:PutObjectAcl", object(&format!("{STATE}x"))),
            Request::new("s3:DeleteBucket", "arn:aws:s3:::flink-s3-test"),
        ];
        for request in denied {
            assert_eq!(
                evaluate(&policy, &request),
                Decision::ImplicitDeny,
                "{request:?}"
            );
        }
    }

    #[test]
    fn deny_wins_and_what_cannot_be_judged_grants_nothing() {
        let policy: PolicyDocument = serde_json::from_value(json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::b-1/keep/*"},
                {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                 "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": 3600}}},
                {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:sqs:*:*:q?",
                 "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}}
            ]
        }))
        .unwrap();
        let judge = |r: Request| evaluate(&policy, &r);
        assert_eq!(
            judge(Request::new("S3:GETOBJECT", "arn:aws:s3:::b-1/x")),
            Decision::Allow
        );
        assert_eq!(
            judge(Request::new("s3:DeleteObject", "arn:aws:s3:::b-1/keep/a")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            judge(Request::new("ec2:RunInstances", "*").with("aws:MultiFactorAuthAge", "1")),
            Decision::ImplicitDeny,
            "an operator beyond the evaluator never allows"
        );
        assert_eq!(
            judge(Request::new(
                "sqs:SendMessage",
                "arn:aws:sqs:eu-west-1:1:q1"
            )),
            Decision::Allow
        );
        assert_eq!(
            judge(
                Request::new("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q1")
                    .with("aws:sourcevpc", "vpc-1")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            judge(Request::new(
                "sqs:SendMessage",
                "arn:aws:sqs:eu-west-1:1:q12"
            )),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn wildcards() {
        for (pattern, text, expected) in [
            ("a/*", "a/", true),
            ("a/*", "a", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
        ] {
            assert_eq!(wildcard_match(pattern, text), expected, "{pattern} {text}");
        }
    }
}
