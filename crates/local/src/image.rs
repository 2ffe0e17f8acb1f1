//! The run inside the job's image (`--image`): the image has Flink's S3 plugin, which PyPI's
//! package lacks. The script is mounted read-only where the cluster puts it, the
//! configuration directory next to it, and the local AWS credentials reach the S3 plugin
//! through the environment.

use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use flink_eks_plan::Progress;
use futures::StreamExt as _;

use crate::conf::Runtime;
use crate::error::{Error, io};
use crate::{Clock, Event, LocalJob, Outcome, OutputLog, RunOptions, Stream};

/// Flink's command line in Flink's images.
const FLINK_CLI: &str = "/opt/flink/bin/flink";

/// Where the run's configuration directory is mounted in the container (`FLINK_CONF_DIR`).
pub const CONF_MOUNT: &str = "/opt/flink-eks/conf";

/// The image's own configuration directory, whose files the run starts from.
const IMAGE_CONF_DIR: &str = "/opt/flink/conf";

/// The image to run in.
#[derive(Debug, Clone)]
pub struct ImageJob {
    /// The image reference, as deploy builds and pushes it.
    pub image: String,
    /// The interpreter in the image (`[job] python`).
    pub python: String,
    /// `AWS_REGION` for the job's S3 client, when known.
    pub region: Option<String>,
}

fn docker_error(what: &str) -> impl FnOnce(bollard::errors::Error) -> Error + '_ {
    move |err| Error::Docker {
        what: what.to_owned(),
        reason: match &err {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
            other => flink_eks_plan::one_line_chain(other),
        },
    }
}

/// Runs the script inside `image.image` with Docker: its Python, its Flink and S3 plugin, the
/// deployment's configuration (minus the cluster's keys, with the S3 plugin reading
/// credentials from the environment), the job's arguments, for at most `options.duration`.
pub async fn run_in_image(
    job: &LocalJob,
    image: &ImageJob,
    options: &RunOptions,
    progress: &dyn Progress<Event>,
) -> Result<Outcome, Error> {
    let docker = Docker::connect_with_local_defaults().map_err(docker_error("connecting"))?;
    match docker.inspect_image(&image.image).await {
        Ok(_) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Err(Error::ImageMissing {
                image: image.image.clone(),
            });
        }
        Err(err) => return Err(docker_error("inspecting the image")(err)),
    }
    let script = std::path::absolute(&job.script)
        .map_err(io(format!("cannot resolve {}", job.script.display())))?;
    let file_name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job.py".to_owned());
    let work_dir = std::path::absolute(&options.work_dir)
        .map_err(io(format!("cannot resolve {}", options.work_dir.display())))?;

    let base_dir = work_dir.join("image-conf");
    let has_cli = copy_image_conf(&docker, &image.image, &base_dir).await?;
    let conf_dir = work_dir.join("conf");
    let runtime = Runtime::Image {
        python: image.python.clone(),
    };
    crate::write_conf_dir(job, &runtime, &base_dir, &conf_dir, progress)?;

    let mut env = vec![format!("FLINK_CONF_DIR={CONF_MOUNT}")];
    if let Some(region) = &image.region {
        env.push(format!("AWS_REGION={region}"));
    }
    env.extend(credentials(image.region.clone(), progress).await);

    let script_in_image = format!("{}/{file_name}", flink_eks_manifest::USRLIB_DIR);
    // Flink's command line with a local mini-cluster, as in `run_local`; an image without it
    // (not built from Flink's) runs the script with its Python, where only the `python.*`
    // keys of the configuration apply.
    let (mut entrypoint, clock) = match has_cli {
        true => (
            vec![
                FLINK_CLI.to_owned(),
                "run".to_owned(),
                "--target".to_owned(),
                "local".to_owned(),
                "-py".to_owned(),
            ],
            Clock::from_submission(options.duration),
        ),
        false => (
            vec![image.python.clone()],
            Clock::from_start(options.duration),
        ),
    };
    entrypoint.push(script_in_image.clone());
    let cmd = job.args.clone();
    let body = ContainerCreateBody {
        image: Some(image.image.clone()),
        entrypoint: Some(entrypoint.clone()),
        cmd: Some(cmd),
        env: Some(env),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:{script_in_image}:ro", script.display()),
                format!("{}:{CONF_MOUNT}:ro", conf_dir.display()),
            ]),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let created = docker
        .create_container(None, body)
        .await
        .map_err(docker_error("creating the container"))?;
    let container = Container {
        docker: &docker,
        id: created.id,
    };
    progress.event(&Event::Started {
        command: format!(
            "{}{} in {} (container {})",
            entrypoint.join(" "),
            job.args.iter().map(|a| format!(" {a}")).collect::<String>(),
            image.image,
            &container.id[..12.min(container.id.len())]
        ),
    });
    let result = container.run(clock, progress).await;
    container.remove().await;
    result
}

/// A container of the run, removed (forced) when the run is done, and also when the run is
/// dropped halfway (Ctrl-C ends the command line's future): no job keeps running unseen.
struct Container<'a> {
    docker: &'a Docker,
    id: String,
}

impl Container<'_> {
    async fn run(
        &self,
        mut clock: Clock,
        progress: &dyn Progress<Event>,
    ) -> Result<Outcome, Error> {
        let attach = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .logs(true)
            .build();
        let mut attached = self
            .docker
            .attach_container(&self.id, Some(attach))
            .await
            .map_err(docker_error("attaching to the container"))?;
        self.docker
            .start_container(&self.id, None)
            .await
            .map_err(docker_error("starting the container"))?;
        let mut log = OutputLog::default();
        let mut partial = [String::new(), String::new()];
        let mut stopped = false;
        loop {
            let chunk = tokio::select! {
                chunk = attached.output.next() => match chunk {
                    Some(Ok(chunk)) => chunk,
                    _ => break,
                },
                _ = tokio::time::sleep_until(clock.deadline().into()) => {
                    stopped = true;
                    break;
                }
            };
            let (stream, message) = match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (Stream::Stdout, message)
                }
                LogOutput::StdErr { message } => (Stream::Stderr, message),
                LogOutput::StdIn { .. } => continue,
            };
            let buffer = &mut partial[stream as usize];
            buffer.push_str(&String::from_utf8_lossy(&message));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']).to_owned();
                clock.saw(&line);
                log.push(stream, &line);
                progress.event(&Event::Output { stream, line });
            }
        }
        clock.end();
        if stopped {
            let stop = StopContainerOptionsBuilder::default().t(10).build();
            self.docker
                .stop_container(&self.id, Some(stop))
                .await
                .map_err(docker_error("stopping the container"))?;
        }
        for (stream, rest) in [Stream::Stdout, Stream::Stderr].into_iter().zip(partial) {
            if !rest.is_empty() {
                log.push(stream, &rest);
                progress.event(&Event::Output { stream, line: rest });
            }
        }
        let state = self
            .docker
            .inspect_container(&self.id, None)
            .await
            .map_err(docker_error("reading the container's exit code"))?
            .state;
        let code = state.and_then(|s| s.exit_code).unwrap_or(0);
        if stopped || code == 0 {
            return Ok(log.outcome(&clock, stopped));
        }
        Err(log.failure(i32::try_from(code).unwrap_or(1)))
    }

    async fn remove(mut self) {
        let id = std::mem::take(&mut self.id);
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        // A container left behind is visible in `docker ps -a`; the run's result stands.
        let _ = self.docker.remove_container(&id, Some(options)).await;
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        // No await in a destructor, and no runtime may start inside the caller's: a thread
        // of its own removes the container.
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        let removal = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = runtime.block_on(docker.remove_container(&id, Some(options)));
        });
        let _ = removal.join();
    }
}

/// Copies the image's `/opt/flink/conf` files into `into` (nothing when the image has none);
/// whether the image has Flink's command line.
async fn copy_image_conf(docker: &Docker, image: &str, into: &Path) -> Result<bool, Error> {
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(io(format!("cannot clear {}", into.display())))?;
    }
    std::fs::create_dir_all(into).map_err(io(format!("cannot create {}", into.display())))?;
    // Never started: the command only satisfies an image that names none.
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["true".to_owned()]),
        ..ContainerCreateBody::default()
    };
    let created = docker
        .create_container(None, body)
        .await
        .map_err(docker_error(
            "creating a container to read the image's configuration",
        ))?;
    let container = Container {
        docker,
        id: created.id,
    };
    let archive = download(docker, &container.id, IMAGE_CONF_DIR).await;
    let cli = download(docker, &container.id, FLINK_CLI).await;
    container.remove().await;
    let has_cli = cli?.is_some();
    let Some(archive) = archive? else {
        return Ok(has_cli);
    };
    let mut tar = tar::Archive::new(archive.as_slice());
    let entries = tar
        .entries()
        .map_err(io("reading the image's configuration archive"))?;
    for entry in entries {
        let mut entry = entry.map_err(io("reading the image's configuration archive"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path: PathBuf = entry
            .path()
            .map_err(io("reading the image's configuration archive"))?
            .into_owned();
        // Only the folder's own files: `conf/config.yaml`, not deeper.
        if path.components().count() != 2 {
            continue;
        }
        if let Some(name) = path.file_name() {
            let to = into.join(name);
            entry
                .unpack(&to)
                .map_err(io(format!("cannot write {}", to.display())))?;
        }
    }
    Ok(has_cli)
}

/// A path of a container as a tar archive; `None` when it does not exist.
async fn download(docker: &Docker, container: &str, path: &str) -> Result<Option<Vec<u8>>, Error> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut archive = Vec::new();
    let mut stream = docker.download_from_container(container, Some(options));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => archive.extend_from_slice(&bytes),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(err) => return Err(docker_error("reading the image's files")(err)),
        }
    }
    Ok(Some(archive))
}

/// The local AWS credentials (the SDK's default chain) as environment variables for the
/// container, which the S3 plugin's `EnvironmentVariableCredentialsProvider` reads. Without
/// any, the job runs without them.
async fn credentials(region: Option<String>, progress: &dyn Progress<Event>) -> Vec<String> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let config = loader.load().await;
    let Some(provider) = config.credentials_provider() else {
        progress.event(&Event::NoCredentials {
            reason: "no credentials provider is configured".into(),
        });
        return Vec::new();
    };
    match provider.provide_credentials().await {
        Ok(credentials) => {
            let mut env = vec![
                format!("AWS_ACCESS_KEY_ID={}", credentials.access_key_id()),
                format!("AWS_SECRET_ACCESS_KEY={}", credentials.secret_access_key()),
            ];
            if let Some(token) = credentials.session_token() {
                env.push(format!("AWS_SESSION_TOKEN={token}"));
            }
            progress.event(&Event::Credentials {
                variables: env
                    .iter()
                    .filter_map(|v| v.split_once('=').map(|(name, _)| name.to_owned()))
                    .collect(),
            });
            env
        }
        Err(err) => {
            progress.event(&Event::NoCredentials {
                reason: flink_eks_plan::one_line_chain(&err),
            });
            Vec::new()
        }
    }
}
