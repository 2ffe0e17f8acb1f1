//! Prints the FlinkDeployment of the example job, `python-example-s3`.
//!
//! `cargo run -p flink-eks-manifest --example render`

use flink_eks_manifest::{PyFlinkJob, S3Location};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let script = S3Location::new("flink-s3-test", "test/python_demo_s3.py")?;
    let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let job = PyFlinkJob::new(
        "python-example-s3",
        script,
        sha256,
        "hiha2/flink-s3:latest",
        "1.20.0",
    );
    print!("{}", job.render()?);
    Ok(())
}
