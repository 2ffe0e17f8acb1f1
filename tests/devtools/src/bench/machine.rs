//! What the table says about the machine: cores, memory, CPU, rustc, the date, and the
//! versions of the CLI flow's tools.

use std::process::Command;

use super::report::{self, Machine};
use super::stand::{Stand, unix_micros};

/// Probes this machine; what cannot be read is "unknown".
pub(super) fn probe(stand: &Stand) -> Machine {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let docker =
        first_line(Command::new("docker").args(["version", "--format", "{{.Client.Version}}"]));
    let kubectl = first_line(Command::new(&stand.kubectl).args(["version", "--client"]));
    let aws = first_line(stand.command(&stand.aws).arg("--version"));
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: report::meminfo_total_gib(
            &std::fs::read_to_string("/proc/meminfo").unwrap_or_default(),
        )
        .unwrap_or(0.0),
        cpu: report::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
            .unwrap_or_else(|| "unknown CPU".to_owned()),
        rustc: first_line(Command::new(rustc).arg("--version")),
        date: report::utc_date(unix_micros() / 1_000_000),
        tools: vec![
            format!("docker {docker}"),
            format!("kubectl {}", kubectl_version(&kubectl)),
            aws_version(&aws),
        ],
    }
}

/// The first line a command prints (stdout, or stderr when stdout is empty), or "unknown".
fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `Client Version: v1.32.4` → `v1.32.4`.
fn kubectl_version(line: &str) -> &str {
    line.trim_start_matches("Client Version: ")
}

/// `aws-cli/1.46.3 Python/3.13.5 Linux/…` → `aws-cli 1.46.3`.
fn aws_version(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or("aws-cli")
        .replace('/', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_versions_read_as_the_table_prints_them() {
        assert_eq!(kubectl_version("Client Version: v1.32.4"), "v1.32.4");
        assert_eq!(
            aws_version("aws-cli/1.46.3 Python/3.13.5 Linux/6.1.0 botocore/1.40.3"),
            "aws-cli 1.46.3"
        );
        assert_eq!(aws_version(""), "aws-cli");
        assert_eq!(
            first_line(&mut Command::new("/nonexistent/tool")),
            "unknown"
        );
    }
}
