//! CPU and memory of the JobManager and TaskManager pods, checked the way the operator reads them.

use crate::Error;

/// CPU and memory of one Flink component (`spec.jobManager.resource`, `spec.taskManager.resource`).
///
/// `memory` is the component's total process memory. The operator parses it with Flink's
/// `MemorySize` (`2048m`, `2g`, `1024k`, `2048mb`, bytes without a unit) and, when that
/// fails, as a Kubernetes quantity (`1024Mi`, `2Gi`); both forms are accepted here.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// CPU cores, greater than 0 (`1.0`, `0.5`).
    pub cpu: f64,
    /// Total process memory, e.g. `2048m`.
    pub memory: String,
}

impl Resources {
    /// Resources with the given CPU and memory.
    pub fn new(cpu: f64, memory: impl Into<String>) -> Self {
        Resources {
            cpu,
            memory: memory.into(),
        }
    }

    /// Checks both values; `component` (`JobManager`, `TaskManager`) names them in errors.
    pub(crate) fn validate(&self, component: Component) -> Result<(), Error> {
        if !(self.cpu.is_finite() && self.cpu > 0.0) {
            return Err(Error::InvalidCpu {
                field: component.cpu_field(),
                value: self.cpu,
            });
        }
        validate_memory(component.memory_field(), &self.memory)
    }
}

/// 2048m and 1 CPU, the JobManager of the usual manual setup.
impl Default for Resources {
    fn default() -> Self {
        Resources::new(1.0, "2048m")
    }
}

/// Which Flink component a [`Resources`] belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Component {
    JobManager,
    TaskManager,
}

impl Component {
    fn cpu_field(self) -> &'static str {
        match self {
            Component::JobManager => "JobManager cpu",
            Component::TaskManager => "TaskManager cpu",
        }
    }

    fn memory_field(self) -> &'static str {
        match self {
            Component::JobManager => "JobManager memory",
            Component::TaskManager => "TaskManager memory",
        }
    }
}

/// Units of Flink's `MemorySize`, matched case-insensitively.
const FLINK_UNITS: [&str; 14] = [
    "b",
    "bytes",
    "k",
    "kb",
    "kibibytes",
    "m",
    "mb",
    "mebibytes",
    "g",
    "gb",
    "gibibytes",
    "t",
    "tb",
    "tebibytes",
];

/// Binary suffixes of Kubernetes quantities, which the operator accepts after upper-casing
/// the value and dropping a trailing `B` (so `1024mi` and `1GiB` work as well).
const KUBERNETES_BINARY_SUFFIXES: [&str; 6] = ["ki", "mi", "gi", "ti", "pi", "ei"];

/// Checks a memory size the way the operator parses `resource.memory`, and that it is more
/// than zero.
pub(crate) fn validate_memory(field: &'static str, value: &str) -> Result<(), Error> {
    let invalid = || Error::InvalidMemory {
        field,
        value: value.to_owned(),
    };
    let trimmed = value.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim_start().to_ascii_lowercase();

    let flink_form = !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && (unit.is_empty() || FLINK_UNITS.contains(&unit.as_str()));
    let kubernetes_form = {
        let suffix = unit.strip_suffix('b').unwrap_or(&unit);
        let mut parts = number.split('.');
        let whole_ok = parts.next().is_some_and(|p| !p.is_empty());
        let fraction_ok = parts.next().is_none_or(|p| !p.is_empty());
        whole_ok
            && fraction_ok
            && parts.next().is_none()
            && KUBERNETES_BINARY_SUFFIXES.contains(&suffix)
    };
    if !(flink_form || kubernetes_form) {
        return Err(invalid());
    }
    let positive = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if !positive {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_forms_the_operator_accepts() {
        for ok in [
            "2048m",
            "2048M",
            "2g",
            "2G",
            "1024k",
            "2048mb",
            "2048 m",
            "1073741824",
            "2gb",
            "1024Mi",
            "2Gi",
            "1.5Gi",
            "1024mi",
            "2GiB",
            "2 gibibytes",
            "1024mebibytes",
        ] {
            validate_memory("JobManager memory", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn malformed_memory_is_an_error_naming_the_field() {
        for bad in [
            "", "2048x", "m", "-2048m", "2048mm", "1.5g", "0m", "0", "Gi", "1..5Gi", "2.Gi",
        ] {
            let err = validate_memory("TaskManager memory", bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidMemory {
                        field: "TaskManager memory",
                        ..
                    }
                ),
                "{bad}"
            );
            assert!(err.to_string().starts_with("TaskManager memory"), "{err}");
        }
    }

    #[test]
    fn cpu_must_be_positive() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = Resources::new(bad, "2048m")
                .validate(Component::JobManager)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidCpu {
                        field: "JobManager cpu",
                        ..
                    }
                ),
                "{err}"
            );
        }
        Resources::new(0.5, "2048m")
            .validate(Component::TaskManager)
            .unwrap();
    }
}
