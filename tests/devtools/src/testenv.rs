//! `cargo xtask test`: install what the tests need, start the real services they talk to,
//! run every test in the workspace against them, and stop what was started.
//!
//! The end-to-end tests run the deploy binary (`target/debug/xtask`) as a user runs it, so it
//! is built with the tests when they are part of the run.
//!
//! Services: a Docker engine (started only when none answers), two registries (one plain, one
//! with htpasswd auth), a moto server (the AWS emulator), and the Kubernetes stand-in. Their
//! endpoints reach the tests as `FLINK_EKS_TEST_*` environment variables.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The Debian packages the services come from, by the command each provides.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("dockerd", "docker.io"),
    ("docker-registry", "docker-registry"),
    ("busybox", "busybox-static"),
    ("htpasswd", "apache2-utils"),
    ("shellcheck", "shellcheck"),
];

/// The image the tests build FROM, since no public image can be pulled here.
pub(crate) const BASE_IMAGE: &str = "flink-eks-test/flink-base:1.20.0";

/// The same stand-in base, marked as a `linux/arm64` image, for builds for arm64. Its
/// busybox is the host's: a `RUN` step cannot execute in it without binfmt emulation, so only
/// Dockerfiles of `COPY` steps build FROM it.
pub(crate) const ARM64_BASE_IMAGE: &str = "flink-eks-test/flink-base-arm64:1.20.0";

/// The htpasswd user of the authenticated registry. The password is generated per run.
const REGISTRY_USER: &str = "flink-eks-test";

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

pub(crate) struct TestArgs {
    /// Arguments passed on to `cargo test` (a filter, `--package`, ...).
    pub(crate) cargo_args: Vec<String>,
    /// Keep the services running and print their environment instead of running the tests.
    pub(crate) services_only: bool,
}

pub(crate) fn run(root: &Path, args: TestArgs) -> Result<()> {
    let started = Instant::now();

    // Without the operator's CRDs the stand-in cannot start: say so before compiling anything.
    crate::crds::locate(root)?;

    // Compile the tests while the services come up: on a cold machine both take minutes.
    let compile = match args.services_only {
        true => None,
        false => Some(spawn_cargo_test(root, &[], true, &args.cargo_args)?),
    };

    let mut services = Services::start(root, "xtask test", &[])?;
    // PyFlink (about 400 MB to download once per machine) only for runs that include the
    // end-to-end tests, which run `cargo xtask run --local`.
    if args.services_only || runs_end_to_end_tests(&args.cargo_args) {
        let python = ensure_pyflink(root, "xtask test")?;
        services.env.push((
            "FLINK_EKS_TEST_PYFLINK_PYTHON".to_owned(),
            python.display().to_string(),
        ));
    }
    let result = (|| -> Result<ExitStatus> {
        let env = services.env.clone();
        if args.services_only {
            for (k, v) in &env {
                println!("export {k}={}", shell_quote(v));
            }
            eprintln!("services are up; press Ctrl-C to stop them");
            loop {
                thread::sleep(Duration::from_secs(3600));
            }
        }
        if let Some(compile) = compile {
            let status = wait_child(compile, "cargo test --no-run")?;
            if !status.success() {
                return Ok(status);
            }
            if runs_end_to_end_tests(&args.cargo_args) {
                let status = build_deploy_binary(root)?;
                if !status.success() {
                    return Ok(status);
                }
            }
        }
        eprintln!(
            "[xtask test] services up after {:.1?}; running the tests",
            started.elapsed()
        );
        let child = spawn_cargo_test(root, &env, false, &args.cargo_args)?;
        wait_child(child, "cargo test")
    })();
    services.stop();
    let status = result?;
    eprintln!("[xtask test] finished in {:.1?}", started.elapsed());
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

fn spawn_cargo_test(
    root: &Path,
    env: &[(String, String)],
    no_run: bool,
    extra: &[String],
) -> Result<Child> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg("test");
    // `-p PACKAGE` narrows the run; otherwise every test in the workspace runs.
    if !extra
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package"))
    {
        cmd.arg("--workspace");
    }
    // Every test binary runs, so that one failure does not hide the others.
    cmd.arg(if no_run { "--no-run" } else { "--no-fail-fast" });
    // Extra arguments go after `--workspace`; `--` and what follows reach the test binaries.
    cmd.args(extra);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn().context("cannot run cargo test")
}

/// Whether the run includes the end-to-end tests (package `flink-eks-tests`): no `-p` at all,
/// or that package among them.
fn runs_end_to_end_tests(cargo_args: &[String]) -> bool {
    let mut packages: Vec<&str> = Vec::new();
    let mut args = cargo_args.iter().take_while(|a| *a != "--");
    while let Some(arg) = args.next() {
        if arg == "-p" || arg == "--package" {
            packages.extend(args.next().map(String::as_str));
        } else if let Some(package) = arg.strip_prefix("--package=") {
            packages.push(package);
        } else if let Some(package) = arg.strip_prefix("-p").filter(|p| !p.is_empty()) {
            packages.push(package);
        }
    }
    packages.is_empty() || packages.contains(&"flink-eks-tests")
}

/// `cargo build -p xtask`: the binary the end-to-end tests run, which `cargo test` does not
/// build for them.
fn build_deploy_binary(root: &Path) -> Result<ExitStatus> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "-p", "xtask", "--bin", "xtask"])
        .status()
        .context("cannot run cargo build -p xtask")
}

fn wait_child(mut child: Child, what: &str) -> Result<ExitStatus> {
    child.wait().with_context(|| format!("waiting for {what}"))
}

fn ensure_debian_packages(label: &str, extra: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .chain(extra)
        .filter(|(cmd, _)| which(cmd).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "[{label}] installing Debian packages: {}",
        missing.join(" ")
    );
    if which("apt-get").is_none() {
        bail!(
            "missing {}: install them with your package manager (this needs Debian's apt-get)",
            missing.join(", ")
        );
    }
    run_quiet(Command::new("apt-get").arg("update"), "apt-get update")?;
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// The PyFlink release `cargo xtask run --local` is tested with, pinned exactly.
const PYFLINK_REQUIREMENT: &str = "apache-flink==1.20.5";

/// PyFlink and a Java runtime for the tests of `cargo xtask run --local`: Java from Debian when
/// `java` is missing, and PyFlink in its own virtual environment under
/// `target/test-services/`, reused once its stamp names [`PYFLINK_REQUIREMENT`]. Returns the
/// environment's interpreter.
fn ensure_pyflink(root: &Path, label: &str) -> Result<PathBuf> {
    if std::env::var_os("JAVA_HOME").is_none() {
        ensure_debian_packages(label, &[("java", "openjdk-17-jre-headless")])?;
    }
    let version = PYFLINK_REQUIREMENT.trim_start_matches("apache-flink==");
    let venv = root.join(format!("target/test-services/pyflink-{version}"));
    let python = venv.join("bin/python");
    // The stamp file of flink-eks-local's own cached environments.
    let stamp = venv.join(".flink-eks-requirement");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(PYFLINK_REQUIREMENT) {
        return Ok(python);
    }
    eprintln!(
        "[{label}] installing {PYFLINK_REQUIREMENT} into {} (about 400 MB, once)",
        venv.display()
    );
    let python3 = which("python3").context("python3 is needed for PyFlink: install python3")?;
    if !python.exists() {
        run_quiet(
            Command::new(python3).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    run_quiet(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(PYFLINK_REQUIREMENT),
        &format!("pip install {PYFLINK_REQUIREMENT}"),
    )?;
    std::fs::write(&stamp, PYFLINK_REQUIREMENT)?;
    Ok(python)
}

/// moto (the AWS emulator), the aws CLI (for benchmarks) and actionlint, in a virtual
/// environment under `target/`, pinned by `tests/devtools/requirements.txt`.
fn ensure_python_tools(root: &Path, state_dir: &Path, label: &str) -> Result<PathBuf> {
    let venv = state_dir.join("venv");
    let requirements = root.join("tests/devtools/requirements.txt");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv);
    }
    eprintln!(
        "[{label}] installing moto, awscli and actionlint into {}",
        venv.display()
    );
    let python = which("python3")
        .context("python3 is needed for the AWS emulator (moto): install python3")?;
    if !venv.join("bin/pip").exists() {
        run_quiet(
            Command::new(python).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    run_quiet(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r tests/devtools/requirements.txt",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// What this run started, stopped in reverse order by PID (by [`Services::stop`], or when
/// dropped).
pub(crate) struct Services {
    /// This run's folder: logs, registry storage, the kubeconfig, moto's recording.
    pub(crate) dir: PathBuf,
    /// The Python virtual environment (moto, the aws CLI).
    pub(crate) venv: PathBuf,
    children: Vec<(String, Child)>,
    /// The services' endpoints, as `FLINK_EKS_TEST_*` variables.
    pub(crate) env: Vec<(String, String)>,
    /// Who prints: `xtask test`, `xtask bench`.
    label: &'static str,
}

/// The folders of the run's two registries (plain, and with basic auth), named as they are.
const REGISTRY_STORAGE: [&str; 2] = ["registry", "auth-registry"];

impl Services {
    /// Installs what is missing (the services' Debian packages and `extra_packages`, given as
    /// `(command, package)`; the Python tools), then starts every service, as `cargo xtask
    /// test` does. On failure, what was started is stopped.
    pub(crate) fn start(
        root: &Path,
        label: &'static str,
        extra_packages: &[(&str, &str)],
    ) -> Result<Services> {
        let state_dir = root.join("target/test-services");
        std::fs::create_dir_all(&state_dir)?;
        ensure_debian_packages(label, extra_packages)?;
        let venv = ensure_python_tools(root, &state_dir, label)?;
        let dir = state_dir.join(format!("run-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut services = Services {
            dir,
            venv,
            children: Vec::new(),
            env: Vec::new(),
            label,
        };
        // On failure, `services` is dropped, which stops what was started.
        services.start_all(root)?;
        Ok(services)
    }

    /// The value of one of the services' variables.
    pub(crate) fn var(&self, key: &str) -> Result<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the services did not set {key}"))
    }

    fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.push((key.to_owned(), value.into()));
    }

    fn start_all(&mut self, root: &Path) -> Result<()> {
        let venv = self.venv.clone();
        self.start_dockerd()?;
        self.import_base_image()?;
        self.load_arm64_base_image()?;
        self.start_registries()?;
        self.start_moto(&venv)?;
        for (var, path) in crate::crds::locate(root)? {
            self.set(var, path.display().to_string());
        }
        self.start_kube_standin(root)?;
        self.set("FLINK_EKS_TEST_BASE_IMAGE", BASE_IMAGE);
        self.set("FLINK_EKS_TEST_BASE_IMAGE_ARM64", ARM64_BASE_IMAGE);
        self.set(
            "FLINK_EKS_TEST_ACTIONLINT",
            venv.join("bin/actionlint").display().to_string(),
        );
        self.set(
            "FLINK_EKS_TEST_AWS_CLI",
            venv.join("bin/aws").display().to_string(),
        );
        Ok(())
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<u32> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    fn start_dockerd(&mut self) -> Result<()> {
        if docker_ping() {
            return Ok(());
        }
        eprintln!(
            "[{}] no Docker engine answers on {DOCKER_SOCKET}; starting dockerd",
            self.label
        );
        self.spawn("dockerd", &mut Command::new("dockerd"))?;
        wait_for("dockerd", Duration::from_secs(60), docker_ping)
            .with_context(|| format!("see {}", self.dir.join("dockerd.log").display()))
    }

    /// A stand-in for the official `flink` image: busybox's shell and tools, the Flink layout
    /// with placeholder jars, and a `flink` user (uid 9999) owning `/opt/flink`.
    fn import_base_image(&mut self) -> Result<()> {
        let present = Command::new("docker")
            .args(["image", "inspect", BASE_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if present {
            return Ok(());
        }
        eprintln!(
            "[{}] importing the stand-in base image {BASE_IMAGE}",
            self.label
        );
        let busybox =
            which("busybox").context("busybox is missing: apt-get install busybox-static")?;
        let tar = base_image_tar(&std::fs::read(&busybox)?)?;
        docker_with_input(
            &[
                "import",
                "-c",
                "ENV PATH=/bin",
                "-c",
                "WORKDIR /opt/flink",
                "-",
                BASE_IMAGE,
            ],
            &tar,
        )
    }

    /// [`ARM64_BASE_IMAGE`], loaded from an image archive whose configuration names arm64.
    /// Not `docker import --platform linux/arm64`: the Docker engine 20.10 that Debian ships
    /// records the host's architecture on an imported image whatever the platform asked.
    fn load_arm64_base_image(&mut self) -> Result<()> {
        let architecture = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Os}}/{{.Architecture}}"])
            .arg(ARM64_BASE_IMAGE)
            .stderr(Stdio::null())
            .output()?;
        if architecture.status.success() && architecture.stdout.trim_ascii() == b"linux/arm64" {
            return Ok(());
        }
        eprintln!(
            "[{}] loading the stand-in arm64 base image {ARM64_BASE_IMAGE}",
            self.label
        );
        let busybox =
            which("busybox").context("busybox is missing: apt-get install busybox-static")?;
        let layer = base_image_tar(&std::fs::read(&busybox)?)?;
        let archive = arm64_image_archive(&layer, ARM64_BASE_IMAGE)?;
        docker_with_input(&["image", "load"], &archive)
    }

    fn start_registries(&mut self) -> Result<()> {
        let password = random_hex(16);
        let htpasswd_file = self.dir.join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", REGISTRY_USER, &password])
            .output()
            .context("cannot run htpasswd")?;
        std::fs::write(&htpasswd_file, out.stdout)?;
        for (name, auth) in REGISTRY_STORAGE.into_iter().zip([false, true]) {
            let port = free_port()?;
            let storage = self.dir.join(name);
            std::fs::create_dir_all(&storage)?;
            let mut config = format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            );
            if auth {
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: flink-eks-test\n    path: {}\n",
                    htpasswd_file.display()
                ));
            }
            let config_file = self.dir.join(format!("{name}.yml"));
            std::fs::write(&config_file, config)?;
            self.spawn(
                name,
                Command::new("docker-registry")
                    .arg("serve")
                    .arg(&config_file),
            )?;
            wait_for(name, Duration::from_secs(20), || port_open(port))?;
            let var = if auth {
                "FLINK_EKS_TEST_AUTH_REGISTRY"
            } else {
                "FLINK_EKS_TEST_REGISTRY"
            };
            self.set(var, format!("127.0.0.1:{port}"));
            let log = self.dir.join(format!("{name}.log")).display().to_string();
            self.set(&format!("{var}_LOG"), log);
        }
        self.set("FLINK_EKS_TEST_AUTH_REGISTRY_USER", REGISTRY_USER);
        self.set("FLINK_EKS_TEST_AUTH_REGISTRY_PASSWORD", password);
        Ok(())
    }

    fn start_moto(&mut self, venv: &Path) -> Result<()> {
        let port = free_port()?;
        self.spawn(
            "moto",
            Command::new(venv.join("bin/moto_server"))
                .args(["-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                // The request recorder (`/moto-api/recorder/...`, used by `cargo xtask bench`
                // to count writes) keeps its file here rather than in the working directory.
                .env(
                    "MOTO_RECORDER_FILEPATH",
                    self.dir.join("moto-recording.jsonl"),
                ),
        )?;
        wait_for("moto", Duration::from_secs(30), || {
            http_ok(port, "/moto-api/")
        })?;
        self.set(
            "FLINK_EKS_TEST_AWS_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        );
        Ok(())
    }

    fn start_kube_standin(&mut self, root: &Path) -> Result<()> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        run_quiet(
            Command::new(cargo).current_dir(root).args([
                "build",
                "--quiet",
                "-p",
                "kube-standin",
                "--bin",
                "kube-standin",
            ]),
            "cargo build -p kube-standin",
        )?;
        let kubeconfig = self.dir.join("kubeconfig");
        let log = self.dir.join("kube-standin.log");
        let mut child = Command::new(root.join("target/debug/kube-standin"))
            .args(["--port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("FLINK_EKS_CRD", self.var("FLINK_EKS_CRD")?)
            .env(
                "FLINK_EKS_SNAPSHOT_CRD",
                self.var("FLINK_EKS_SNAPSHOT_CRD")?,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start kube-standin")?;
        let stdout = child.stdout.take().context("kube-standin stdout")?;
        self.children.push(("kube-standin".to_owned(), child));
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first)?;
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("kube-standin did not start (see {})", log.display()))?;
        self.set("FLINK_EKS_TEST_KUBE_URL", url);
        self.set(
            "FLINK_EKS_TEST_KUBECONFIG",
            kubeconfig.display().to_string(),
        );
        Ok(())
    }

    /// Stops what was started, newest first, by PID: SIGTERM, then SIGKILL after 10 s.
    pub(crate) fn stop(&mut self) {
        let label = self.label;
        for (name, mut child) in self.children.drain(..).rev() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("[{label}] {name} (pid {pid}) did not stop on SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The registries' storage is most of the run's folder (about 100 MB of image layers);
        // the logs, small, stay for reading after the run.
        for storage in REGISTRY_STORAGE {
            let _ = std::fs::remove_dir_all(self.dir.join(storage));
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The root filesystem of the stand-in base image, as a tar stream for `docker import`.
/// Runs `docker ARGS`, with `input` on its standard input (an image archive, a root file
/// system's tar), and fails naming the command when it does.
fn docker_with_input(args: &[&str], input: &[u8]) -> Result<()> {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run docker")?;
    child
        .stdin
        .take()
        .context("no stdin pipe to docker")?
        .write_all(input)?;
    if !child.wait()?.success() {
        bail!("docker {} failed", args.join(" "));
    }
    Ok(())
}

fn base_image_tar(busybox: &[u8]) -> Result<Vec<u8>> {
    const FLINK_UID: u64 = 9999;
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = |path: &str, uid: u64, mode: u32| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path(path)?;
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, std::io::empty())?;
        Ok(())
    };
    for d in ["bin", "etc"] {
        dir(d, 0, 0o755)?;
    }
    dir("tmp", 0, 0o1777)?;
    dir("opt", 0, 0o755)?;
    for d in [
        "opt/flink",
        "opt/flink/opt",
        "opt/flink/lib",
        "opt/flink/plugins",
        "opt/flink/usrlib",
    ] {
        dir(d, FLINK_UID, 0o755)?;
    }
    let mut file = |path: &str, uid: u64, mode: u32, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_path(path)?;
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append(&h, data)?;
        Ok(())
    };
    file("bin/busybox", 0, 0o755, busybox)?;
    file(
        "etc/passwd",
        0,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nflink:x:9999:9999:flink:/opt/flink:/bin/sh\n",
    )?;
    file("etc/group", 0, 0o644, b"root:x:0:\nflink:x:9999:\n")?;
    for jar in ["flink-s3-fs-hadoop-1.20.0.jar", "flink-python-1.20.0.jar"] {
        file(
            &format!("opt/flink/opt/{jar}"),
            FLINK_UID,
            0o644,
            b"placeholder jar of the test base image\n",
        )?;
    }
    for applet in [
        "sh",
        "ls",
        "cp",
        "mkdir",
        "cat",
        "echo",
        "chown",
        "chmod",
        "rm",
        "mv",
        "sha256sum",
        "test",
        "true",
        "false",
        "env",
        "id",
        "sleep",
        "wget",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_path(format!("bin/{applet}"))?;
        h.set_link_name("busybox")?;
        h.set_mode(0o777);
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, std::io::empty())?;
    }
    Ok(tar.into_inner()?)
}

/// An image archive as `docker image load` reads it (`manifest.json`, the image
/// configuration, one layer): `layer` as a `linux/arm64` image tagged `reference`, with the
/// environment and working directory of the amd64 stand-in.
fn arm64_image_archive(layer: &[u8], reference: &str) -> Result<Vec<u8>> {
    use sha2::Digest as _;
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(layer)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "arm64",
        "os": "linux",
        "created": "2000-01-01T00:00:00Z",
        "config": { "Env": ["PATH=/bin"], "WorkingDir": "/opt/flink" },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": "2000-01-01T00:00:00Z", "created_by": "flink-eks-devtools" }],
    }))?;
    let config_name = format!("{}.json", hex::encode(sha2::Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [reference],
        "Layers": ["layer/layer.tar"],
    }]))?;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        (config_name.as_str(), config.as_slice()),
        ("layer/layer.tar", layer),
        ("manifest.json", manifest.as_slice()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(path)?;
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        tar.append(&h, bytes)?;
    }
    Ok(tar.into_inner()?)
}

fn docker_ping() -> bool {
    let Ok(mut stream) = UnixStream::connect(DOCKER_SOCKET) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

fn port_open(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn wait_for(what: &str, limit: Duration, ready: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not become ready within {limit:?}")
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        bail!(
            "{what} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

pub(crate) fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(cmd))
        .find(|p| p.is_file())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf = nanos
            .to_le_bytes()
            .iter()
            .cycle()
            .take(bytes)
            .copied()
            .collect();
    }
    hex::encode(buf)
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn the_deploy_binary_is_built_when_the_end_to_end_tests_run() {
        assert!(runs_end_to_end_tests(&args(&[])));
        assert!(runs_end_to_end_tests(&args(&["deploy_dry_run"])));
        assert!(runs_end_to_end_tests(&args(&["-p", "flink-eks-tests"])));
        assert!(runs_end_to_end_tests(&args(&[
            "-p",
            "flink-eks-irsa",
            "--package=flink-eks-tests"
        ])));
        assert!(!runs_end_to_end_tests(&args(&["-p", "flink-eks-irsa"])));
        assert!(!runs_end_to_end_tests(&args(&["-pflink-eks-manifest"])));
        // What follows `--` goes to the test binaries, not to cargo.
        assert!(!runs_end_to_end_tests(&args(&[
            "--package",
            "flink-eks-irsa",
            "--",
            "-p",
            "flink-eks-tests"
        ])));
    }

    #[test]
    fn the_arm64_archive_names_arm64_and_its_layer() -> Result<()> {
        use sha2::Digest as _;
        let layer = base_image_tar(b"busybox binary")?;
        let archive = arm64_image_archive(&layer, ARM64_BASE_IMAGE)?;
        let mut files = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(archive.as_slice()).entries()? {
            let mut entry = entry?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            files.insert(entry.path()?.display().to_string(), bytes);
        }
        let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
        assert_eq!(manifest[0]["RepoTags"][0], ARM64_BASE_IMAGE);
        let config_name = manifest[0]["Config"].as_str().unwrap_or_default();
        let config: serde_json::Value = serde_json::from_slice(&files[config_name])?;
        assert_eq!(
            (&config["os"], &config["architecture"]),
            (&"linux".into(), &"arm64".into())
        );
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&layer)))
        );
        assert_eq!(files["layer/layer.tar"], layer);
        Ok(())
    }

    #[test]
    fn the_base_image_has_the_flink_layout_and_a_shell() {
        let tar = base_image_tar(b"busybox binary").map_err(|e| e.to_string());
        let mut entries = Vec::new();
        if let Ok(tar) = &tar {
            let mut archive = tar::Archive::new(tar.as_slice());
            for entry in archive.entries().into_iter().flatten().flatten() {
                let path = entry.path().map(|p| p.display().to_string());
                entries.push((path.unwrap_or_default(), entry.header().uid().unwrap_or(0)));
            }
        }
        assert!(tar.is_ok(), "{tar:?}");
        for (path, uid) in [
            ("bin/busybox", 0),
            ("bin/sh", 0),
            ("opt/flink/usrlib", 9999),
            ("opt/flink/opt/flink-s3-fs-hadoop-1.20.0.jar", 9999),
        ] {
            assert!(
                entries.iter().any(|(p, u)| p == path && *u == uid),
                "{path} (uid {uid}) is missing from {entries:?}"
            );
        }
    }
}
