//! `cargo xtask run --local` through the real binary, with real PyFlink and a real JVM:
//! `cargo xtask test` installs PyFlink (pinned) into its own cached virtual environment and
//! Java from Debian when it is missing, and names the interpreter in
//! `FLINK_EKS_TEST_PYFLINK_PYTHON`. `--image` runs against the Docker engine with the test base
//! image (busybox standing in for Flink's image).

use std::path::{Path, PathBuf};

use anyhow::Result;
use flink_eks_tests::{XtaskRun, service, workspace_root};
use sha2::Digest as _;

/// The interpreter of the PyFlink environment `cargo xtask test` installed.
fn pyflink_python() -> String {
    service("FLINK_EKS_TEST_PYFLINK_PYTHON")
}

/// The example deployment with another script (written next to it) and `replace`d lines.
fn deployment(dir: &Path, script: &str, text: &str, replace: &[(&str, &str)]) -> Result<PathBuf> {
    let example = std::fs::read_to_string(workspace_root().join("examples/deploy.toml"))?;
    let mut config = example.replace(
        "script = \"jobs/python_demo_s3.py\"",
        &format!("script = \"{script}\""),
    );
    for (from, to) in replace {
        assert!(config.contains(from), "the example has no {from:?}");
        config = config.replace(from, to);
    }
    std::fs::write(dir.join(script), text)?;
    let path = dir.join("deploy.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// `xtask --config CONFIG run --local --cache-dir <dir>/cache ARGS...` with `env`.
async fn run_local(
    config: &Path,
    cache: &Path,
    args: &[&str],
    env: Vec<(String, String)>,
) -> Result<XtaskRun> {
    let cache = cache.display().to_string();
    let mut all = vec!["run", "--local", "--cache-dir", cache.as_str()];
    all.extend(args);
    flink_eks_tests::Xtask::new(config, env)?.run(&all).await
}

/// `script`, written as `name` next to the example deployment in a fresh directory, run
/// `--local` with the PyFlink environment's interpreter and `args`.
async fn run_script(name: &str, script: &str, args: &[&str]) -> Result<XtaskRun> {
    let python = pyflink_python();
    let dir = tempfile::tempdir()?;
    let config = deployment(dir.path(), name, script, &[])?;
    let mut all = vec!["--python", python.as_str()];
    all.extend(args);
    run_local(&config, &dir.path().join("cache"), &all, vec![]).await
}

#[tokio::test]
async fn the_example_job_runs_and_prints_its_records() -> Result<()> {
    let python = pyflink_python();
    let cache = tempfile::tempdir()?;
    let config = workspace_root().join("examples/deploy.toml");
    let run = run_local(&config, cache.path(), &["--python", &python], vec![]).await?;
    assert_eq!(run.code, Some(0), "{run}");
    // Ten lines of the twelve words, "flink" twice in each: the last count of each word. The
    // records carry no subtask prefix (`1> `): the deployment's parallelism (1) reached the job.
    let records: Vec<&str> = run.stdout.lines().collect();
    assert!(records.contains(&"(flink,20)"), "{run}");
    assert!(records.contains(&"(kubernetes,10)"), "{run}");
    assert!(
        run.stderr.contains("finished in") && run.stderr.contains("without error"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("left out fs.s3a.aws.credentials.provider: names the pod's identity"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn a_script_with_an_error_exits_non_zero_naming_it() -> Result<()> {
    let script = "from pyflink.common import Types\n\
                  from pyflink.datastream import StreamExecutionEnvironment\n\
                  \n\
                  def parse(line):\n    return int(line)\n\
                  \n\
                  env = StreamExecutionEnvironment.get_execution_environment()\n\
                  env.from_collection([\"1\", \"x\"]).map(parse, output_type=Types.INT()).print()\n\
                  env.execute(\"parse\")\n";
    let run = run_script("parse.py", script, &[]).await?;
    assert_eq!(run.code, Some(5), "the job failed: exit 5\n{run}");
    let error = run
        .stderr
        .lines()
        .position(|l| l.starts_with("error: the job failed"))
        .map(|i| run.stderr.lines().skip(i).collect::<Vec<_>>().join("\n"))
        .unwrap_or_else(|| panic!("no error line\n{run}"));
    assert!(
        error.contains("ValueError: invalid literal for int() with base 10: 'x'"),
        "{error}"
    );
    assert!(error.contains("parse.py\", line 5, in parse"), "{error}");
    assert!(!error.contains("S3"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_job_that_reads_s3_is_told_about_the_plugin() -> Result<()> {
    let script = "from pyflink.common import WatermarkStrategy\n\
                  from pyflink.datastream import StreamExecutionEnvironment\n\
                  from pyflink.datastream.connectors.file_system import FileSource, StreamFormat\n\
                  env = StreamExecutionEnvironment.get_execution_environment()\n\
                  source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), \"s3://flink-s3-test/in.txt\").build()\n\
                  env.from_source(source, WatermarkStrategy.no_watermarks(), \"in\").print()\n\
                  env.execute(\"s3\")\n";
    let run = run_script("s3.py", script, &[]).await?;
    assert_eq!(run.code, Some(5), "{run}");
    assert!(
        run.stderr
            .contains("Could not find a file system implementation for scheme 's3'"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("PyPI's apache-flink has no S3 file system plugin: run it in the job's image with --image"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn a_streaming_job_stops_after_its_duration() -> Result<()> {
    let script = "from pyflink.table import EnvironmentSettings, TableEnvironment\n\
                  t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())\n\
                  t_env.execute_sql(\"CREATE TABLE numbers (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '20', 'fields.n.min' = '1', 'fields.n.max' = '100')\")\n\
                  t_env.execute_sql(\"CREATE TABLE printed (n BIGINT) WITH ('connector' = 'print')\")\n\
                  t_env.execute_sql(\"INSERT INTO printed SELECT n FROM numbers\").wait()\n";
    let run = run_script("generated.py", script, &["--duration", "5"]).await?;
    assert_eq!(run.code, Some(0), "{run}");
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("ran "))
        .unwrap_or_else(|| panic!("no summary line\n{run}"));
    assert!(
        summary.starts_with("ran 5 s without error")
            || summary.starts_with("ran 6 s without error"),
        "{summary}"
    );
    let printed: u64 = summary
        .rsplit_once("; ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"));
    let records = run.stdout.lines().filter(|l| l.starts_with("+I[")).count() as u64;
    // 20 rows a second for 5 s, once the job is running.
    assert!(records >= 20, "{records} records\n{run}");
    assert!(printed >= records, "{summary}: {records} records");
    Ok(())
}

fn sha256_hex(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

#[tokio::test]
async fn in_the_image_the_script_is_mounted_with_its_arguments_and_credentials() -> Result<()> {
    let base = service("FLINK_EKS_TEST_BASE_IMAGE");
    let (repository, tag) = base.rsplit_once(':').expect("the base image has a tag");
    let dir = tempfile::tempdir()?;
    // The test base image has busybox, not Python or Flink's command line: the "script" is a
    // shell script run by `[job] python = "/bin/sh"`, reporting what it was given, credentials
    // only as hashes.
    let script = r#"echo "script=$0"
for a in "$@"; do echo "arg=$a"; done
echo "conf_dir=$FLINK_CONF_DIR"
while read -r line; do
  case "$line" in
    *'fs.s3a.aws.credentials.provider: "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"'*) echo "provider=environment" ;;
    *'parallelism.default: "1"'*) echo "parallelism=1" ;;
  esac
done < "$FLINK_CONF_DIR/config.yaml"
echo "key_id=$(printf %s "$AWS_ACCESS_KEY_ID" | sha256sum)"
echo "secret=$(printf %s "$AWS_SECRET_ACCESS_KEY" | sha256sum)"
echo "region=$AWS_REGION"
if (echo x >> "$0") 2>/dev/null; then echo "mount=writable"; else echo "mount=read-only"; fi
"#;
    let config = deployment(
        dir.path(),
        "wiring.py",
        script,
        &[
            ("args = []", "args = [\"--rows\", \"3\", \"two words\"]"),
            (
                "repository = \"hiha2/flink-s3\"",
                &format!("repository = \"{repository}\"\ntag = \"{tag}\""),
            ),
            ("# python = \"/usr/bin/python3\"", "python = \"/bin/sh\""),
        ],
    )?;
    let key_id = "AKIDLOCALRUNTEST0001";
    let secret = "local-run-secret-value-never-printed";
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), key_id.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
    ];
    let run = run_local(&config, &dir.path().join("cache"), &["--image"], env).await?;
    assert_eq!(run.code, Some(0), "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for expected in [
        "script=/opt/flink/usrlib/wiring.py",
        "arg=--rows",
        "arg=3",
        "arg=two words",
        "conf_dir=/opt/flink-eks/conf",
        "provider=environment",
        "parallelism=1",
        "region=ap-northeast-2",
        "mount=read-only",
    ] {
        assert!(lines.contains(&expected), "{expected}\n{run}");
    }
    assert!(
        run.stdout
            .contains(&format!("key_id={}", sha256_hex(key_id))),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("secret={}", sha256_hex(secret))),
        "{run}"
    );
    assert!(
        run.stderr.contains(
            "AWS credentials passed to the container as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
        ),
        "{run}"
    );
    for output in [&run.stdout, &run.stderr] {
        assert!(
            !output.contains(secret) && !output.contains(key_id),
            "{run}"
        );
    }
    Ok(())
}
