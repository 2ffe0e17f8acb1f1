//! Where a stateful job keeps its state: one S3 prefix, from which the checkpoint, savepoint
//! and HA directories follow, and how often it checkpoints.

use std::time::Duration;

use crate::{Error, S3Prefix};

/// How often a job checkpoints when nothing else is said: once a minute.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The shortest checkpoint interval Flink accepts (`CheckpointCoordinatorConfiguration`'s
/// minimum of 10 ms).
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(10);

/// The folder under the prefix that checkpoints go to.
pub const CHECKPOINTS_FOLDER: &str = "checkpoints";
/// The folder under the prefix that savepoints go to.
pub const SAVEPOINTS_FOLDER: &str = "savepoints";
/// The folder under the prefix that Kubernetes HA keeps its metadata in.
pub const HA_FOLDER: &str = "ha";

/// The state of a job in S3: everything under one prefix, so that one IAM grant covers it.
///
/// ```
/// use flink_eks_manifest::{S3Prefix, StateStorage};
///
/// let state = StateStorage::new(S3Prefix::parse("s3://flink-s3-test/flink-eks/default/job/state/")?);
/// assert_eq!(state.checkpoints_dir(), "s3://flink-s3-test/flink-eks/default/job/state/checkpoints");
/// assert_eq!(state.savepoints_dir(), "s3://flink-s3-test/flink-eks/default/job/state/savepoints");
/// assert_eq!(state.ha_storage_dir(), "s3://flink-s3-test/flink-eks/default/job/state/ha");
/// assert_eq!(state.checkpoint_interval_value(), "60s");
/// # Ok::<(), flink_eks_manifest::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateStorage {
    /// The prefix every state file goes under.
    pub prefix: S3Prefix,
    /// `execution.checkpointing.interval`. Default [`DEFAULT_CHECKPOINT_INTERVAL`].
    pub checkpoint_interval: Duration,
}

impl StateStorage {
    /// State under `prefix`, checkpointing every minute.
    pub fn new(prefix: S3Prefix) -> Self {
        StateStorage {
            prefix,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }

    /// `s3://BUCKET/PREFIX/checkpoints`.
    pub fn checkpoints_dir(&self) -> String {
        self.prefix.join(CHECKPOINTS_FOLDER)
    }

    /// `s3://BUCKET/PREFIX/savepoints`.
    pub fn savepoints_dir(&self) -> String {
        self.prefix.join(SAVEPOINTS_FOLDER)
    }

    /// `s3://BUCKET/PREFIX/ha`.
    pub fn ha_storage_dir(&self) -> String {
        self.prefix.join(HA_FOLDER)
    }

    /// The interval as Flink writes durations: `60s`, or `500ms` when not whole seconds.
    pub fn checkpoint_interval_value(&self) -> String {
        format_flink_duration(self.checkpoint_interval)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.checkpoint_interval < MIN_CHECKPOINT_INTERVAL {
            return Err(Error::InvalidCheckpointInterval {
                value: format_flink_duration(self.checkpoint_interval),
            });
        }
        Ok(())
    }
}

fn format_flink_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Parses a duration as Flink's configuration writes it: a whole number and a unit, `ms`,
/// `s`, `min` or `h` (`60s`, `5 min`, `500ms`).
///
/// ```
/// use std::time::Duration;
/// use flink_eks_manifest::parse_flink_duration;
///
/// assert_eq!(parse_flink_duration("90s")?, Duration::from_secs(90));
/// assert_eq!(parse_flink_duration("5 min")?, Duration::from_secs(300));
/// assert!(parse_flink_duration("60").is_err());
/// # Ok::<(), flink_eks_manifest::Error>(())
/// ```
pub fn parse_flink_duration(value: &str) -> Result<Duration, Error> {
    let invalid = || Error::InvalidCheckpointInterval {
        value: value.to_owned(),
    };
    let trimmed = value.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let millis_per_unit = match unit.trim_start() {
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    let millis = number.checked_mul(millis_per_unit).ok_or_else(invalid)?;
    let duration = Duration::from_millis(millis);
    if duration < MIN_CHECKPOINT_INTERVAL {
        return Err(invalid());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_flink_syntax() {
        for (text, duration, shown) in [
            ("60s", Duration::from_secs(60), "60s"),
            ("2 min", Duration::from_secs(120), "120s"),
            ("1h", Duration::from_secs(3600), "3600s"),
            ("1500ms", Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(parse_flink_duration(text).unwrap(), duration, "{text}");
            assert_eq!(format_flink_duration(duration), shown);
        }
        for bad in [
            "",
            "60",
            "s",
            "-1s",
            "1.5s",
            "1 d",
            "5ms",
            "0s",
            "99999999999999999h",
        ] {
            let err = parse_flink_duration(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCheckpointInterval { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("60s"), "{err}");
        }
    }
}
