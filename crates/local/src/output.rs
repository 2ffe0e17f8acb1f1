//! What a failed run's output says: the Python exception, the traceback's last frames, the
//! Java root cause, and whether the job needed the S3 plugin. No IO.

/// How many frames of a traceback the summary keeps, the innermost.
pub const SUMMARY_FRAMES: usize = 3;

/// Flink's `UnsupportedFileSystemSchemeException` for `s3://`, `s3a://` and `s3p://` when no S3
/// plugin is installed (PyPI's `apache-flink` ships none): "Could not find a file system
/// implementation for scheme 's3'. The scheme is directly supported by Flink through the
/// following plugin(s): flink-s3-fs-hadoop, flink-s3-fs-presto. …".
const NO_S3_PLUGIN: &str = "Could not find a file system implementation for scheme 's3";

const TRACEBACK: &str = "Traceback (most recent call last):";

/// One Python traceback found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Traceback {
    /// `File "…", line N, in f` and the source line under it, innermost last.
    frames: Vec<(String, Option<String>)>,
    /// `ValueError: …`.
    exception: String,
}

fn tracebacks(lines: &[&str]) -> Vec<Traceback> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_end().ends_with(TRACEBACK) {
            i += 1;
            continue;
        }
        i += 1;
        let mut frames: Vec<(String, Option<String>)> = Vec::new();
        while i < lines.len() && lines[i].starts_with(' ') {
            let line = lines[i].trim();
            if line.starts_with("File ") {
                frames.push((line.to_owned(), None));
            } else if !line.chars().all(|c| matches!(c, '^' | '~' | ' '))
                && let Some(last) = frames.last_mut()
                && last.1.is_none()
            {
                last.1 = Some(line.to_owned());
            }
            i += 1;
        }
        if let Some(exception) = lines.get(i).map(|l| l.trim()).filter(|l| !l.is_empty()) {
            found.push(Traceback {
                frames,
                exception: exception.to_owned(),
            });
        }
    }
    found
}

/// Flink's command line reports the Python client's exit last; the job's own cause comes
/// before it.
const CLIENT_EXIT: &str = "Python process exits with code";

/// The last `Caused by:` of a Java stack trace (its root cause), passing over the command
/// line's report of the Python client's exit.
fn java_root_cause(lines: &[&str]) -> Option<String> {
    lines
        .iter()
        .rev()
        .filter_map(|l| l.strip_prefix("Caused by: "))
        .find(|cause| !cause.contains(CLIENT_EXIT))
        .map(|cause| {
            let cause = cause.trim();
            // Flink's messages can run to a paragraph: the first sentence names the problem.
            match cause.find(". ") {
                Some(end) if end > 40 => format!("{}.", &cause[..end]),
                _ => cause.to_owned(),
            }
        })
}

/// A few lines naming why the job failed, from its output: the exception and the innermost
/// frames of the Python traceback that raised it (the job's own, such as an error in a user
/// function, rather than the client's `Py4JJavaError` that reports it), or Java's root cause.
/// `None` when the output holds neither.
pub fn failure_summary(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    let all = tracebacks(&lines);
    let chosen = all
        .iter()
        .find(|t| !t.exception.starts_with("py4j.protocol.Py4J"))
        .or(all.last());
    let root = java_root_cause(&lines);
    let Some(traceback) = chosen else {
        return root;
    };
    let mut summary = traceback.exception.clone();
    if traceback.exception.starts_with("py4j.protocol.Py4J")
        && let Some(root) = &root
    {
        summary.push_str(&format!("\n  caused by: {root}"));
    }
    // The job's own frames say where to look; PyFlink's, Beam's and py4j's only how the
    // error travelled. Without any of the job's, the innermost.
    let own: Vec<&(String, Option<String>)> = traceback
        .frames
        .iter()
        .filter(|(frame, _)| !is_library_frame(frame))
        .collect();
    let frames = match own.is_empty() {
        true => traceback.frames.iter().collect(),
        false => own,
    };
    let skip = frames.len().saturating_sub(SUMMARY_FRAMES);
    for (frame, source) in &frames[skip..] {
        summary.push_str(&format!("\n  {frame}"));
        if let Some(source) = source {
            summary.push_str(&format!("\n    {source}"));
        }
    }
    Some(summary)
}

/// Whether a frame is in an installed package (or PyFlink's compiled modules) rather than in
/// the job's own files.
fn is_library_frame(frame: &str) -> bool {
    frame.contains("/site-packages/")
        || frame.contains("/dist-packages/")
        || frame.starts_with("File \"pyflink/")
        || frame.starts_with("File \"apache_beam/")
}

/// Whether the job failed for want of Flink's S3 file system plugin.
pub fn s3_plugin_missing(output: &str) -> bool {
    output.contains(NO_S3_PLUGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user function's error, as PyFlink 1.20.5 prints it in a local mini-cluster: the
    /// worker's traceback, then the client's Py4JJavaError with the Java stack.
    const UDF_ERROR: &str = r#"1> 1
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/apache_beam/runners/worker/sdk_worker.py", line 295, in _execute
    response = task()
               ^^^^^^
  File "pyflink/fn_execution/beam/beam_operations_fast.pyx", line 65, in pyflink.fn_execution.beam.beam_operations_fast.IntermediateInputProcessor.has_next
  File "/venv/lib/python3.11/site-packages/pyflink/datastream/data_stream.py", line 310, in process_element
    yield self._map_func(value)
          ^^^^^^^^^^^^^^^^^^^^^
  File "/tmp/F/bad.py", line 3, in parse
    return int(line)
           ^^^^^^^^^
ValueError: invalid literal for int() with base 10: 'x'

Traceback (most recent call last):
  File "/tmp/F/bad.py", line 6, in <module>
    env.execute("bad")
  File "/venv/lib/python3.11/site-packages/py4j/protocol.py", line 326, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o0.execute.
: org.apache.flink.runtime.client.JobExecutionException: Job execution failed.
	at org.apache.flink.runtime.jobmaster.JobResult.toJobExecutionResult(JobResult.java:144)
Caused by: java.lang.RuntimeException: Error received from SDK harness for instruction 1: Traceback (most recent call last):
"#;

    /// A source reading `s3://` without the plugin (PyFlink 1.20.5 from PyPI, through `flink
    /// run --target local`).
    const NO_PLUGIN: &str = r#"Traceback (most recent call last):
  File "/tmp/F/s3.py", line 7, in <module>
    env.execute("s3")
  File "/venv/lib/python3.11/site-packages/py4j/protocol.py", line 326, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o0.execute.
: org.apache.flink.runtime.client.JobExecutionException: Job execution failed.
	at org.apache.flink.runtime.jobmaster.JobResult.toJobExecutionResult(JobResult.java:144)
Caused by: org.apache.flink.util.FlinkRuntimeException: Could not enumerate file splits
	at org.apache.flink.connector.file.src.FileSource.createEnumerator(FileSource.java:1)
Caused by: org.apache.flink.core.fs.UnsupportedFileSystemSchemeException: Could not find a file system implementation for scheme 's3'. The scheme is directly supported by Flink through the following plugin(s): flink-s3-fs-hadoop, flink-s3-fs-presto. Please ensure that each plugin resides within its own subfolder within the plugins directory.
	at org.apache.flink.core.fs.FileSystem.getUnguardedFileSystem(FileSystem.java:515)

 The program finished with the following exception:

org.apache.flink.client.program.ProgramAbortException: java.lang.RuntimeException: Python process exits with code: 1
	at org.apache.flink.client.python.PythonDriver.main(PythonDriver.java:134)
Caused by: java.lang.RuntimeException: Python process exits with code: 1
	at org.apache.flink.client.python.PythonDriver.main(PythonDriver.java:124)
"#;

    #[test]
    fn a_user_functions_error_is_named_with_its_frames() {
        let summary = failure_summary(UDF_ERROR).unwrap();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(
            lines[0],
            "ValueError: invalid literal for int() with base 10: 'x'"
        );
        assert!(
            summary.contains("File \"/tmp/F/bad.py\", line 3, in parse\n    return int(line)"),
            "{summary}"
        );
        assert!(!summary.contains("^^^"), "{summary}");
        assert!(
            !summary.contains("sdk_worker.py"),
            "only the innermost frames: {summary}"
        );
        assert!(!s3_plugin_missing(UDF_ERROR));
    }

    #[test]
    fn a_java_failure_is_named_by_its_root_cause() {
        let summary = failure_summary(NO_PLUGIN).unwrap();
        assert!(summary.starts_with("py4j.protocol.Py4JJavaError: An error occurred while calling o0.execute.\n  caused by: org.apache.flink.core.fs.UnsupportedFileSystemSchemeException: Could not find a file system implementation for scheme 's3'."), "{summary}");
        assert!(
            summary
                .ends_with("File \"/tmp/F/s3.py\", line 7, in <module>\n    env.execute(\"s3\")"),
            "{summary}"
        );
        assert!(s3_plugin_missing(NO_PLUGIN));
    }

    #[test]
    fn an_exception_in_the_script_itself() {
        let output = "Traceback (most recent call last):\n  File \"/job.py\", line 1, in <module>\n    import pyflink.nothing\nModuleNotFoundError: No module named 'pyflink.nothing'\n";
        assert_eq!(
            failure_summary(output).unwrap(),
            "ModuleNotFoundError: No module named 'pyflink.nothing'\n  File \"/job.py\", line 1, in <module>\n    import pyflink.nothing"
        );
    }

    #[test]
    fn output_without_an_error_has_no_summary() {
        assert_eq!(failure_summary("(flink,1)\n(s3,1)\n"), None);
    }
}
