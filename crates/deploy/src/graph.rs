//! The step graph, declared once: which step waits for which. The plan's printer, its JSON
//! and the executor's scheduler all read [`GRAPH`]; nothing else states the order.

use std::fmt;

use serde::Serialize;

/// A step of a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Build and push the Flink image.
    Image,
    /// The job's namespace, and the Role and RoleBinding its service account needs.
    Rbac,
    /// IAM policy, role and the service account's identity.
    Irsa,
    /// The script to S3.
    Upload,
    /// Render the FlinkDeployment.
    Manifest,
    /// Apply it and watch it to RUNNING.
    Submit,
}

/// Each step with the steps it waits for, in the order steps are listed.
///
/// Image, rbac and upload touch different services and share nothing; the manifest is
/// rendered from the inputs alone (the image reference is known before the build, since its
/// tag is the build context's digest). Irsa waits for rbac, which creates the namespace its
/// service account goes into. Submit applies the manifest, and the job it starts pulls the
/// image, creates TaskManager pods as its account, assumes the role and fetches the script:
/// it waits for all the others.
pub const GRAPH: [(Step, &[Step]); 6] = [
    (Step::Image, &[]),
    (Step::Rbac, &[]),
    (Step::Irsa, &[Step::Rbac]),
    (Step::Upload, &[]),
    (Step::Manifest, &[]),
    (
        Step::Submit,
        &[
            Step::Image,
            Step::Rbac,
            Step::Irsa,
            Step::Upload,
            Step::Manifest,
        ],
    ),
];

impl Step {
    /// Every step, in the order of [`GRAPH`].
    pub const ALL: [Step; 6] = {
        let mut all = [Step::Image; 6];
        let mut i = 0;
        while i < GRAPH.len() {
            all[i] = GRAPH[i].0;
            i += 1;
        }
        all
    };

    /// The steps that must finish before this one starts.
    pub fn waits_for(self) -> &'static [Step] {
        GRAPH
            .iter()
            .find(|(step, _)| *step == self)
            .map_or(&[], |(_, deps)| *deps)
    }

    /// The step's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Step::Image => "image",
            Step::Rbac => "rbac",
            Step::Irsa => "irsa",
            Step::Upload => "upload",
            Step::Manifest => "manifest",
            Step::Submit => "submit",
        }
    }

    /// Parses a step's name.
    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The steps in waves: every step of a wave waits only for steps of earlier waves, so a
/// wave's steps run concurrently.
pub fn waves() -> Vec<Vec<Step>> {
    let mut done: Vec<Step> = Vec::new();
    let mut waves = Vec::new();
    while done.len() < GRAPH.len() {
        let wave: Vec<Step> = GRAPH
            .iter()
            .filter(|(step, deps)| !done.contains(step) && deps.iter().all(|d| done.contains(d)))
            .map(|(step, _)| *step)
            .collect();
        assert!(!wave.is_empty(), "the step graph has a cycle");
        done.extend(&wave);
        waves.push(wave);
    }
    waves
}

/// The order in words, from the graph: `image, rbac, upload and manifest together; then
/// irsa; then submit`.
pub fn describe_order() -> String {
    waves()
        .iter()
        .map(|wave| {
            let names: Vec<&str> = wave.iter().map(|s| s.name()).collect();
            match names.as_slice() {
                [one] => (*one).to_owned(),
                [init @ .., last] => format!("{} and {last} together", init.join(", ")),
                [] => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("; then ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_appears_once_and_waits_only_for_listed_steps() {
        assert_eq!(
            Step::ALL,
            [
                Step::Image,
                Step::Rbac,
                Step::Irsa,
                Step::Upload,
                Step::Manifest,
                Step::Submit
            ]
        );
        for (step, deps) in GRAPH {
            for dep in deps {
                assert!(Step::ALL.contains(dep), "{step} waits for unknown {dep}");
                assert_ne!(*dep, step);
            }
        }
    }

    #[test]
    fn waves_follow_the_graph() {
        assert_eq!(
            waves(),
            [
                vec![Step::Image, Step::Rbac, Step::Upload, Step::Manifest],
                vec![Step::Irsa],
                vec![Step::Submit]
            ]
        );
        assert_eq!(
            Step::Submit.waits_for(),
            [
                Step::Image,
                Step::Rbac,
                Step::Irsa,
                Step::Upload,
                Step::Manifest
            ]
        );
        assert_eq!(Step::Irsa.waits_for(), [Step::Rbac]);
        assert!(Step::Manifest.waits_for().is_empty());
    }

    #[test]
    fn the_printed_order_is_read_from_the_graph() {
        assert_eq!(
            describe_order(),
            "image, rbac, upload and manifest together; then irsa; then submit"
        );
    }

    #[test]
    fn names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()), Some(step));
        }
        assert_eq!(Step::from_name("deploy"), None);
    }
}
