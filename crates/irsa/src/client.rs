//! [`Irsa`]: the clients, and the entry points that read ([`crate::read`]), decide
//! ([`crate::decide`]) and perform ([`crate::write`]).

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use flink_eks_plan::Progress;

use crate::cluster::ClusterIdentity;
use crate::decide::{self, checks, teardown_ops};
use crate::error::{Error, Result};
use crate::plan::{Plan, TeardownPlan};
use crate::read::Purpose;
use crate::report::{Event, TeardownReport, VerifyReport};
use crate::spec::IrsaSpec;

/// How long to wait for IAM's eventual consistency: `attempts` looks, the first at once,
/// then pauses doubling from `first_delay` up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// How many looks at most (at least 1).
    pub attempts: u32,
    /// The pause after the first look.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for WaitPolicy {
    /// 8 looks over about 30 seconds (0.5, 1, 2, 4, 8, 8, 8 s between them).
    fn default() -> Self {
        WaitPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// The clients that make AWS and Kubernetes match an [`IrsaSpec`].
#[derive(Clone)]
pub struct Irsa {
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) eks: aws_sdk_eks::Client,
    pub(crate) kube: kube::Client,
    pub(crate) wait: WaitPolicy,
    pub(crate) known_cluster: Option<ClusterIdentity>,
}

impl std::fmt::Debug for Irsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Irsa")
            .field(
                "region",
                &self.sts.config().region().map(|r| r.as_ref().to_owned()),
            )
            .field("wait", &self.wait)
            .field("known_cluster", &self.known_cluster)
            .finish_non_exhaustive()
    }
}

impl Irsa {
    /// IAM, STS and EKS clients from one AWS configuration, and a Kubernetes client.
    pub fn new(config: &SdkConfig, kube: kube::Client) -> Irsa {
        Irsa::from_clients(
            aws_sdk_iam::Client::new(config),
            aws_sdk_sts::Client::new(config),
            aws_sdk_eks::Client::new(config),
            kube,
        )
    }

    /// Clients configured separately (for example with an interceptor, or with EKS
    /// pointed elsewhere). The region and credentials are those of the STS client.
    pub fn from_clients(
        iam: aws_sdk_iam::Client,
        sts: aws_sdk_sts::Client,
        eks: aws_sdk_eks::Client,
        kube: kube::Client,
    ) -> Irsa {
        Irsa {
            iam,
            sts,
            eks,
            kube,
            wait: WaitPolicy::default(),
            known_cluster: None,
        }
    }

    /// Replaces the bound on waiting for IAM's eventual consistency.
    pub fn with_wait(mut self, wait: WaitPolicy) -> Irsa {
        self.wait = wait;
        self
    }

    /// The cluster's identity as an earlier [`Irsa::plan`] read it ([`Plan::cluster`]), kept
    /// by the caller between runs: [`Irsa::plan`] then does not ask EKS for it, and reads
    /// everything else in one wave.
    ///
    /// It only ever confirms. When the plan it gives would change anything, block, or refuse,
    /// EKS is asked after all; the plan stands if the cluster is the one remembered, and is
    /// made again from EKS's answer if not. So a stale identity (a cluster deleted and made
    /// again under its name) costs a round trip, and never a wrong write. [`Irsa::verify`]
    /// and teardown never use it.
    pub fn with_known_cluster(mut self, identity: ClusterIdentity) -> Irsa {
        self.known_cluster = Some(identity);
        self
    }

    /// Reads everything once and returns the operations that make AWS and Kubernetes match
    /// the spec: OIDC provider, policy, role, attachment, annotation (or pod identity
    /// association). Makes no write. Refuses a role or policy that flink-eks did not create
    /// for this service account unless `spec.adopt`. A missing namespace, or a service account
    /// whose annotation names another role (unless `spec.adopt`), is a [`crate::Blocker`] of
    /// the plan.
    pub async fn plan(&self, spec: &IrsaSpec) -> Result<Plan> {
        let known = self.known_cluster.as_ref();
        let (seen, desired) = self.observe(spec, Purpose::Apply, known).await?;
        if !seen.cluster_known {
            return decide::plan(spec, seen, &desired);
        }
        let planned = decide::plan(spec, seen.clone(), &desired);
        if matches!(&planned, Ok(plan) if plan.is_noop() && plan.blockers.is_empty()) {
            return planned;
        }
        let asked = self.cluster_identity(spec).await?;
        if known == Some(&asked) {
            let mut plan = planned?;
            plan.cluster = Some(asked);
            return Ok(plan);
        }
        tracing::info!(
            cluster = %spec.cluster,
            "the cluster's remembered identity is not EKS's; planning from EKS's answer"
        );
        // EKS's answer is as fresh as a read of the same wave would be.
        let (seen, desired) = self.observe(spec, Purpose::Apply, Some(&asked)).await?;
        let mut plan = decide::plan(spec, seen, &desired)?;
        plan.cluster = Some(asked);
        Ok(plan)
    }

    /// The checks (OIDC provider, trust policy, attached and permission policies, annotation or
    /// association) as one report. A missing or different resource is a failed
    /// check, not an error; errors are for calls that could not be made.
    pub async fn verify(&self, spec: &IrsaSpec) -> Result<VerifyReport> {
        let (seen, desired) = self.observe(spec, Purpose::Verify, None).await?;
        Ok(VerifyReport {
            checks: checks(spec, &seen, &desired),
        })
    }

    /// Reads once and returns what teardown removes: the annotation (only while it still
    /// names our role) or the pod identity association, the role (after detaching its
    /// policies), and the policy (after deleting its non-default versions). Anything without
    /// our tags, a policy still attached elsewhere, and the cluster's OIDC provider (shared
    /// by every IRSA role of the cluster) are planned as left alone, with the reason.
    pub async fn teardown_plan(&self, spec: &IrsaSpec) -> Result<TeardownPlan> {
        let (seen, _) = self.observe(spec, Purpose::Teardown, None).await?;
        Ok(TeardownPlan {
            spec: spec.clone(),
            ops: teardown_ops(spec, &seen),
        })
    }

    /// [`Irsa::teardown_plan`], then [`Irsa::apply_teardown`] with no progress.
    pub async fn teardown(&self, spec: &IrsaSpec) -> Result<TeardownReport> {
        let plan = self.teardown_plan(spec).await?;
        self.apply_teardown(&plan, &flink_eks_plan::Silent).await
    }

    /// Waits until IAM shows the role with the policy attached; returns how long it waited.
    pub(crate) async fn wait_until_visible(
        &self,
        plan: &Plan,
        progress: &dyn Progress<Event>,
    ) -> Result<Duration> {
        let what = format!(
            "role {} with policy {} attached",
            plan.spec.role_name, plan.spec.policy_name
        );
        let ((), waited) = retry(self.wait, &what, progress, || async {
            match self.read_role(&plan.spec.role_name, false).await? {
                crate::decide::RoleSeen::Present { attached, .. }
                    if attached.contains(&plan.policy_arn) =>
                {
                    Ok(Some(()))
                }
                _ => Ok(None),
            }
        })
        .await?;
        Ok(waited)
    }
}

/// Calls `attempt` until it gives `Some`, at most `wait.attempts` times, pausing with
/// doubling delays between attempts and reporting each pause. Returns the value and the
/// time spent pausing.
pub(crate) async fn retry<T, F, Fut>(
    wait: WaitPolicy,
    what: &str,
    progress: &dyn Progress<Event>,
    mut attempt: F,
) -> Result<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let attempts = wait.attempts.max(1);
    let mut delay = wait.first_delay;
    let mut waited = Duration::ZERO;
    for n in 1..=attempts {
        if let Some(value) = attempt().await? {
            return Ok((value, waited));
        }
        if n == attempts {
            break;
        }
        progress.event(&Event::Waiting {
            what: what.to_owned(),
            attempt: n,
            attempts,
            delay,
        });
        tracing::info!(
            attempt = n,
            attempts,
            ?delay,
            "IAM does not show {what} yet (eventual consistency)"
        );
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(wait.max_delay);
    }
    Err(Error::NotVisible {
        what: what.to_owned(),
        waited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use flink_eks_plan::Silent;

    fn wait(attempts: u32) -> WaitPolicy {
        WaitPolicy {
            attempts,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(3),
        }
    }

    #[tokio::test]
    async fn retry_waits_with_doubling_capped_delays_until_visible_and_measures_the_wait() {
        let calls = AtomicU32::new(0);
        let pauses = Mutex::new(Vec::new());
        let progress = |e: &Event| {
            if let Event::Waiting {
                attempt,
                attempts,
                delay,
                what,
            } = e
            {
                assert_eq!((*attempts, what.as_str()), (8, "role r"));
                pauses.lock().unwrap().push((*attempt, delay.as_millis()));
            }
        };
        let (value, waited) = retry(wait(8), "role r", &progress, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok((n == 4).then_some(n))
        })
        .await
        .unwrap();
        assert_eq!(value, 4);
        assert_eq!(*pauses.lock().unwrap(), [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(waited, Duration::from_millis(6));
    }

    #[tokio::test]
    async fn retry_is_bounded_and_says_what_it_waited_for() {
        let calls = AtomicU32::new(0);
        let err = retry(
            wait(3),
            "role r with policy p attached",
            &Silent,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(None::<()>)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let message = err.to_string();
        assert!(matches!(err, Error::NotVisible { .. }), "{message}");
        assert!(
            message.contains("role r with policy p attached") && message.contains("3ms"),
            "{message}"
        );
        assert!(message.contains("eventually consistent"), "{message}");
    }

    #[tokio::test]
    async fn retry_stops_at_the_first_error() {
        let calls = AtomicU32::new(0);
        let err = retry(wait(5), "x", &Silent, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<Option<()>, _>(Error::NoRegion)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NoRegion));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
