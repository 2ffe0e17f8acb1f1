//! `cargo xtask doctor`'s output: one line per check on stdout (`✓`, `✗ … — why; fix`, or
//! skipped), or the report as JSON, and the exit code of the first failure's class.

use flink_eks_deploy::doctor::Report;

use crate::Output;

/// Prints the report and returns the exit code: 0 when no check failed, else the failure
/// class of the first failed check (2 a precondition is unmet, 3 credentials were refused,
/// 4 a service could not be read).
pub(crate) fn print(report: &Report, output: Output) -> u8 {
    match output {
        Output::Text => print!("{report}"),
        Output::Json => println!("{}", report.to_json()),
    }
    report.failure().map_or(0, |f| f.exit_code())
}
