//! The local run: the cached virtual environment, the Java check, the configuration
//! directory, and the script's process with its output streamed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use flink_eks_plan::Progress;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use crate::conf::Runtime;
use crate::env::{self, STAMP_FILE};
use crate::error::{Error, io};
use crate::{Clock, Event, LocalJob, Outcome, OutputLog, Python, RunOptions, Stream};

/// How long a stopped job gets to exit after SIGTERM before its process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs the script in a local mini-cluster with PyFlink from PyPI: creates or reuses the
/// virtual environment (or uses the named interpreter), checks Java, writes the configuration
/// directory, and runs the script with the job's arguments through Flink's command line
/// (`flink run --target local -py`) for at most `options.duration`.
pub async fn run_local(
    job: &LocalJob,
    python: &Python,
    options: &RunOptions,
    progress: &dyn Progress<Event>,
) -> Result<Outcome, Error> {
    let java = check_java().await?;
    progress.event(&Event::Java { version: java });
    let interpreter = match python {
        Python::Cached { cache_dir } => ensure_venv(cache_dir, job, progress).await?,
        Python::Interpreter(path) => path.clone(),
    };
    let (version, pyflink_dir) = probe_pyflink(&interpreter, job).await?;
    progress.event(&Event::PyFlink {
        python: interpreter.clone(),
        version: version.clone(),
    });
    if version != job.release.to_string() {
        progress.event(&Event::VersionMismatch {
            found: version,
            wanted: job.release.to_string(),
        });
    }

    let conf_dir = options.work_dir.join("conf");
    let runtime = Runtime::Local {
        python: interpreter.display().to_string(),
    };
    crate::write_conf_dir(
        job,
        &runtime,
        &pyflink_dir.join("conf"),
        &conf_dir,
        progress,
    )?;

    // Flink's own command line with a local mini-cluster, as the operator's JobManager runs
    // the script (PythonDriver, the configuration directory loaded in full), not `python
    // script.py`, whose local environment reads only the `python.*` keys of the configuration.
    let flink = pyflink_dir.join("bin").join("flink");
    let mut command = Command::new("bash");
    command
        .arg(&flink)
        .args(["run", "--target", "local", "-py"])
        .arg(&job.script)
        .args(&job.args)
        .env("FLINK_HOME", &pyflink_dir)
        .env("FLINK_CONF_DIR", &conf_dir)
        .env(
            "PATH",
            env::path_with(&interpreter, std::env::var_os("PATH").as_deref()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: stopping the job stops the JVM and the Python processes it
        // started too.
        .process_group(0);
    progress.event(&Event::Started {
        command: format!(
            "{} run --target local -py {}{}",
            flink.display(),
            job.script.display(),
            job.args.iter().map(|a| format!(" {a}")).collect::<String>()
        ),
    });
    run_streaming(command, Clock::from_submission(options.duration), progress).await
}

/// Runs `command` (in its own process group), streaming its output as events, until `clock`
/// runs out: then the group gets SIGTERM, and SIGKILL after a grace period.
async fn run_streaming(
    mut command: Command,
    mut clock: Clock,
    progress: &dyn Progress<Event>,
) -> Result<Outcome, Error> {
    let mut child = command.spawn().map_err(io("cannot start the script"))?;
    let group = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(pid as i32));
    let guard = GroupGuard(group);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut log = OutputLog::default();
    let mut out = BufReader::new(stdout).lines();
    let mut err = BufReader::new(stderr).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut timed_out = false;
    while out_open || err_open {
        let (stream, line) = tokio::select! {
            line = out.next_line(), if out_open => match line {
                Ok(Some(line)) => (Stream::Stdout, line),
                _ => { out_open = false; continue }
            },
            line = err.next_line(), if err_open => match line {
                Ok(Some(line)) => (Stream::Stderr, line),
                _ => { err_open = false; continue }
            },
            _ = tokio::time::sleep_until(clock.deadline().into()) => {
                timed_out = true;
                break;
            }
        };
        clock.saw(&line);
        log.push(stream, &line);
        progress.event(&Event::Output { stream, line });
    }
    clock.end();
    let status = if timed_out {
        guard.signal(rustix::process::Signal::TERM);
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            guard.signal(rustix::process::Signal::KILL);
            let _ = child.wait().await;
        }
        None
    } else {
        Some(child.wait().await.map_err(io("waiting for the script"))?)
    };
    // Whatever the job left running in its group (a worker, the JVM) ends with it.
    drop(guard);
    match status {
        None => Ok(log.outcome(&clock, true)),
        Some(status) if status.success() => Ok(log.outcome(&clock, false)),
        Some(status) => {
            use std::os::unix::process::ExitStatusExt as _;
            let code = status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0));
            Err(log.failure(code))
        }
    }
}

/// Stops the script's process group when the run is dropped (Ctrl-C ends the command line's
/// future), so that no JVM outlives it.
struct GroupGuard(Option<rustix::process::Pid>);

impl GroupGuard {
    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self.0 {
            // The group may be gone already: nothing to stop then.
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::KILL);
    }
}

/// `java -version` (`$JAVA_HOME/bin/java` when `JAVA_HOME` is set, as PyFlink looks): its
/// first line.
pub async fn check_java() -> Result<String, Error> {
    let java = match std::env::var_os("JAVA_HOME") {
        Some(home) => PathBuf::from(home).join("bin/java"),
        None => PathBuf::from("java"),
    };
    let output = Command::new(&java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| Error::JavaMissing {
            reason: format!("cannot run {} ({err})", java.display()),
        })?;
    if !output.status.success() {
        return Err(Error::JavaMissing {
            reason: format!("{} -version failed ({})", java.display(), output.status),
        });
    }
    let text = String::from_utf8_lossy(&output.stderr);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// The cached virtual environment of the job's release: reused when its stamp names the
/// requirement, else created with `python3 -m venv` and filled by `pip install`.
pub async fn ensure_venv(
    cache_dir: &Path,
    job: &LocalJob,
    progress: &dyn Progress<Event>,
) -> Result<PathBuf, Error> {
    let venv = env::venv_dir(cache_dir, &job.release);
    let requirement = env::requirement(&job.release);
    let stamp = venv.join(STAMP_FILE);
    let python = env::venv_python(&venv);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirement.as_str()) {
        progress.event(&Event::Reusing { venv });
        return Ok(python);
    }
    progress.event(&Event::Installing {
        venv: venv.clone(),
        requirement: requirement.clone(),
    });
    std::fs::create_dir_all(cache_dir)
        .map_err(io(format!("cannot create {}", cache_dir.display())))?;
    let install_failed = |command: String, status: String| Error::Install {
        command,
        status,
        version: job.release.to_string(),
    };
    if !python.exists() {
        let mut venv_cmd = Command::new("python3");
        venv_cmd.args(["-m", "venv"]).arg(&venv);
        let status = streamed(venv_cmd, progress)
            .await
            .map_err(|err| Error::PythonMissing {
                python: "python3".into(),
                reason: err.to_string(),
            })?;
        if !status.success() {
            return Err(install_failed("python3 -m venv".into(), status.to_string()));
        }
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--progress-bar",
        "off",
        &requirement,
    ]);
    let status = streamed(pip, progress)
        .await
        .map_err(io("cannot run pip"))?;
    if !status.success() {
        return Err(install_failed(
            format!("pip install {requirement}"),
            status.to_string(),
        ));
    }
    std::fs::write(&stamp, &requirement)
        .map_err(io(format!("cannot write {}", stamp.display())))?;
    Ok(python)
}

/// Runs a setup command, its output reported as stderr lines.
async fn streamed(
    mut command: Command,
    progress: &dyn Progress<Event>,
) -> std::io::Result<std::process::ExitStatus> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let forward = |reader: tokio::process::ChildStdout| async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress.event(&Event::Output {
                stream: Stream::Stderr,
                line,
            });
        }
    };
    let forward_err = async {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress.event(&Event::Output {
                stream: Stream::Stderr,
                line,
            });
        }
    };
    tokio::join!(forward(stdout), forward_err);
    child.wait().await
}

/// The PyFlink version an interpreter imports, and the folder of its `pyflink` package.
async fn probe_pyflink(python: &Path, job: &LocalJob) -> Result<(String, PathBuf), Error> {
    let no_pyflink = |reason: String| Error::NoPyFlink {
        python: python.display().to_string(),
        reason,
        version: job.release.to_string(),
    };
    let output = Command::new(python)
        .args([
            "-c",
            "import os, pyflink, pyflink.version; print(pyflink.version.__version__); print(os.path.dirname(pyflink.__file__))",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|err| no_pyflink(err.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .last()
            .unwrap_or("no output")
            .trim()
            .to_owned();
        return Err(no_pyflink(last));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    match (lines.next(), lines.next()) {
        (Some(version), Some(dir)) => Ok((version.trim().to_owned(), PathBuf::from(dir.trim()))),
        _ => Err(no_pyflink(format!("unexpected answer {stdout:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_outlives_its_duration_is_stopped_with_its_children() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 60 & echo one; echo two; echo oops >&2; wait"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let events = std::sync::Mutex::new(Vec::new());
        let progress = |e: &Event| events.lock().unwrap().push(format!("{e:?}"));
        let started = std::time::Instant::now();
        let outcome = run_streaming(
            command,
            Clock::from_start(Duration::from_millis(500)),
            &progress,
        )
        .await
        .unwrap();
        assert!(outcome.stopped);
        assert_eq!(outcome.stdout_lines, 2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(events.lock().unwrap().iter().any(|e| e.contains("oops")));
    }

    #[tokio::test]
    async fn a_failing_job_is_summarised() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "echo 'Traceback (most recent call last):' >&2; echo '  File \"/job.py\", line 2, in <module>' >&2; echo '    raise KeyError(1)' >&2; echo 'KeyError: 1' >&2; exit 3"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let err = run_streaming(
            command,
            Clock::from_start(Duration::from_secs(30)),
            &|_: &Event| {},
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("the job failed (exit 3): KeyError: 1\n  File \"/job.py\", line 2"),
            "{text}"
        );
        assert!(matches!(
            err,
            Error::JobFailed {
                code: 3,
                s3_plugin_missing: false,
                ..
            }
        ));
    }
}
