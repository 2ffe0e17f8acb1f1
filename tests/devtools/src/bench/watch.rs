//! Watch latency: from the moment the Kubernetes stand-in stored a status change (its
//! `/standin/status-changes`, stamped by its clock) to the moment `cargo xtask` printed the
//! state it saw (its progress line on stderr, stamped by the bench as it read the line; the
//! same machine, the same clock).

use serde_json::Value;

/// A FlinkDeployment state as `cargo xtask submit` prints it:
/// `  lifecycle STABLE, job RUNNING, JobManager READY, reconciliation DEPLOYED (generation 1, observed 1) (1.2s)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) lifecycle: String,
    pub(crate) job: String,
    pub(crate) job_manager: String,
    pub(crate) generation: Option<i64>,
}

/// The state printed on one of xtask's progress lines, if the line is one.
pub(crate) fn parse_state_line(line: &str) -> Option<State> {
    let rest = line.trim_start().strip_prefix("lifecycle ")?;
    let (lifecycle, rest) = rest.split_once(", job ")?;
    let (job, rest) = rest.split_once(", JobManager ")?;
    let (job_manager, rest) = rest.split_once(", reconciliation ")?;
    let generation = rest
        .split_once("(generation ")
        .and_then(|(_, g)| g.split([',', ')']).next())
        .and_then(|g| g.trim().parse().ok());
    Some(State {
        lifecycle: lifecycle.to_owned(),
        job: job.to_owned(),
        job_manager: job_manager.to_owned(),
        generation,
    })
}

/// A status change the stand-in stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) at_unix_micros: i64,
    pub(crate) state: State,
}

/// The changes of `namespace/name` in the stand-in's `/standin/status-changes` answer.
pub(crate) fn changes_of(answer: &Value, namespace: &str, name: &str) -> Vec<Change> {
    let text = |status: &Value, pointer: &str| {
        status
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    answer
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| c["namespace"] == namespace && c["name"] == name)
        .filter_map(|c| {
            let status = &c["status"];
            Some(Change {
                at_unix_micros: c["at_unix_micros"].as_i64()?,
                state: State {
                    lifecycle: text(status, "/lifecycleState"),
                    job: text(status, "/jobStatus/state"),
                    job_manager: text(status, "/jobManagerDeploymentStatus"),
                    generation: c["generation"].as_i64(),
                },
            })
        })
        .collect()
}

/// The latencies, in milliseconds, of the states xtask printed (`seen`: when the bench read
/// each line, in µs since the epoch, with the state), each against the latest change to the
/// same state stored no later than it was seen. The first state printed is left out: it comes
/// from the watch's initial list, not from a change the watch delivered. Also returns how
/// many printed states matched no change.
pub(crate) fn latencies(seen: &[(i64, State)], changes: &[Change]) -> (Vec<f64>, usize) {
    let mut out = Vec::new();
    let mut unmatched = 0;
    for (at, state) in seen.iter().skip(1) {
        let change = changes
            .iter()
            .filter(|c| c.at_unix_micros <= *at && same_state(&c.state, state))
            .max_by_key(|c| c.at_unix_micros);
        match change {
            Some(c) => out.push((at - c.at_unix_micros) as f64 / 1000.0),
            None => unmatched += 1,
        }
    }
    (out, unmatched)
}

fn same_state(a: &State, b: &State) -> bool {
    a.lifecycle == b.lifecycle
        && a.job == b.job
        && a.job_manager == b.job_manager
        && (a.generation.is_none() || b.generation.is_none() || a.generation == b.generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(lifecycle: &str, job: &str, jm: &str, generation: i64) -> State {
        State {
            lifecycle: lifecycle.into(),
            job: job.into(),
            job_manager: jm.into(),
            generation: Some(generation),
        }
    }

    #[test]
    fn progress_lines_parse() {
        let line = "  lifecycle STABLE, job RUNNING, JobManager READY, reconciliation DEPLOYED (generation 2, observed 2) (812.3ms)";
        assert_eq!(
            parse_state_line(line),
            Some(state("STABLE", "RUNNING", "READY", 2))
        );
        let empty =
            "  lifecycle -, job -, JobManager -, reconciliation - (generation 1, observed -) (5ms)";
        assert_eq!(parse_state_line(empty), Some(state("-", "-", "-", 1)));
        assert_eq!(
            parse_state_line("[submit  ] FlinkDeployment created (generation 1) (0.1s)"),
            None
        );
    }

    #[test]
    fn changes_are_read_for_one_deployment() {
        let answer = json!([
            {"namespace": "default", "name": "a", "generation": 1, "resource_version": "5", "at_unix_micros": 1000,
             "status": {"lifecycleState": "CREATED", "jobStatus": {"state": "RECONCILING"}, "jobManagerDeploymentStatus": "DEPLOYING"}},
            {"namespace": "default", "name": "b", "generation": 1, "resource_version": "6", "at_unix_micros": 1500, "status": {}},
            {"namespace": "default", "name": "a", "generation": 1, "resource_version": "7", "at_unix_micros": 2000,
             "status": {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}, "jobManagerDeploymentStatus": "READY"}},
        ]);
        let changes = changes_of(&answer, "default", "a");
        assert_eq!(
            changes,
            [
                Change {
                    at_unix_micros: 1000,
                    state: state("CREATED", "RECONCILING", "DEPLOYING", 1)
                },
                Change {
                    at_unix_micros: 2000,
                    state: state("STABLE", "RUNNING", "READY", 1)
                },
            ]
        );
        assert!(changes_of(&json!({"not": "a list"}), "default", "a").is_empty());
    }

    #[test]
    fn latency_is_measured_from_the_latest_matching_change() {
        let changes = [
            Change {
                at_unix_micros: 1_000,
                state: state("CREATED", "RECONCILING", "DEPLOYING", 1),
            },
            Change {
                at_unix_micros: 50_000,
                state: state("DEPLOYED", "CREATED", "DEPLOYED_NOT_READY", 1),
            },
            Change {
                at_unix_micros: 100_000,
                state: state("DEPLOYED", "RUNNING", "READY", 1),
            },
            Change {
                at_unix_micros: 150_000,
                state: state("STABLE", "RUNNING", "READY", 1),
            },
        ];
        let seen = [
            // From the initial list: left out.
            (20_000, state("CREATED", "RECONCILING", "DEPLOYING", 1)),
            (
                52_500,
                state("DEPLOYED", "CREATED", "DEPLOYED_NOT_READY", 1),
            ),
            (101_000, state("DEPLOYED", "RUNNING", "READY", 1)),
            (154_000, state("STABLE", "RUNNING", "READY", 1)),
            // A state the stand-in never stored.
            (160_000, state("FAILED", "FAILED", "READY", 1)),
        ];
        let (ms, unmatched) = latencies(&seen, &changes);
        assert_eq!(ms, [2.5, 1.0, 4.0]);
        assert_eq!(unmatched, 1);
    }

    #[test]
    fn a_state_seen_before_it_was_stored_does_not_match() {
        let changes = [Change {
            at_unix_micros: 10_000,
            state: state("STABLE", "RUNNING", "READY", 2),
        }];
        let seen = [
            (1, state("STABLE", "RUNNING", "READY", 1)),
            (5_000, state("STABLE", "RUNNING", "READY", 2)),
        ];
        assert_eq!(latencies(&seen, &changes), (vec![], 1));
    }
}
