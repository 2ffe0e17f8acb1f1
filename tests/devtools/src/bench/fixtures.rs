//! One deployment's files: its `deploy.toml`, script and connector jar, unique per deployment
//! so that each first deploy builds an image no earlier run has built, and what the deploy
//! binary's dry run renders from them for the CLI flow.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flink_eks_image_builder::{ConnectorJar, ImageSpec};

use super::stand::{Stand, output};
use super::{BUCKET, CLUSTER, Flow, NAMESPACE, REGION};
use crate::testenv::BASE_IMAGE;

/// The Flink version of every bench deployment.
const FLINK_VERSION: &str = "1.20.0";

/// The name of `flow`'s deployment in run `run`; its service account has the same name.
pub(super) fn deployment_name(flow: Flow, run: usize) -> String {
    format!("bench-{}-{run}", flow.slug())
}

/// One deployment's folder.
pub(super) struct Deployment {
    pub(super) name: String,
    pub(super) dir: PathBuf,
    /// `registry/bench/<repository>`.
    repository: String,
    /// Different jar seeds, different build contexts.
    jar_seed: String,
    pub(super) script_version: u32,
}

impl Deployment {
    pub(super) fn new(
        stand: &Stand,
        name: String,
        jar_seed: &str,
        repository: &str,
    ) -> Result<Deployment> {
        let dir = stand.work.join(&name);
        std::fs::create_dir_all(&dir)?;
        let deployment = Deployment {
            repository: format!("{}/bench/{repository}", stand.registry),
            name,
            dir,
            jar_seed: jar_seed.to_owned(),
            script_version: 1,
        };
        std::fs::write(deployment.config(), deployment.config_toml())?;
        std::fs::write(
            deployment.jar(),
            format!("placeholder connector jar {}\n", deployment.jar_seed),
        )?;
        deployment.write_script()?;
        Ok(deployment)
    }

    fn config_toml(&self) -> String {
        format!(
            r#"# Written by cargo xtask bench.
[job]
name = "{name}"
namespace = "{NAMESPACE}"
script = "job.py"
flink_version = "{FLINK_VERSION}"
timeout_secs = 300

[s3]
bucket = "{BUCKET}"
key = "{key}"
region = "{REGION}"

[image]
repository = "{repository}"
base = "{BASE_IMAGE}"
pyflink = false
jars = ["connector.jar"]

[irsa]
cluster = "{CLUSTER}"
service_account = "{name}"
role_name = "{name}-role"
policy_name = "{name}-policy"
"#,
            name = self.name,
            key = self.script_key(),
            repository = self.repository,
        )
    }

    pub(super) fn config(&self) -> PathBuf {
        self.dir.join("deploy.toml")
    }

    fn jar(&self) -> PathBuf {
        self.dir.join("connector.jar")
    }

    fn script_key(&self) -> String {
        format!("{}/job.py", self.name)
    }

    fn artifacts(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    pub(super) fn write_script(&self) -> Result<()> {
        let script = format!(
            "# PyFlink job of cargo xtask bench, version {}\nprint(\"hello from {}\")\n",
            self.script_version, self.name
        );
        Ok(std::fs::write(self.dir.join("job.py"), script)?)
    }

    /// The image of the `[image]` section, as the image-builder library takes it: what the
    /// in-process image check builds its context from.
    pub(super) fn image_spec(&self) -> Result<ImageSpec> {
        let jar = ConnectorJar::from_path(self.jar())?;
        Ok(ImageSpec::new(FLINK_VERSION, &self.repository)
            .with_base(BASE_IMAGE)
            .with_pyflink(false)
            .with_connector_jar(jar))
    }

    /// What the CLI flow sends, rendered by `xtask deploy --dry-run` (untimed).
    pub(super) fn render(&self, stand: &Stand) -> Result<()> {
        output(
            stand
                .command(&stand.xtask)
                .arg("--config")
                .arg(self.config())
                .args(["deploy", "--dry-run", "--out"])
                .arg(self.artifacts()),
            "xtask deploy --dry-run",
        )?;
        Ok(())
    }

    /// The build context's digest that the last [`render`](Self::render) wrote.
    pub(super) fn rendered_digest(&self) -> Result<String> {
        let file = self.artifacts().join("build-context.digest");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        Ok(text.trim().to_owned())
    }

    /// The image the last [`render`](Self::render)'s FlinkDeployment names: what the CLI flow
    /// builds and pushes, so that it applies a manifest whose image exists.
    fn rendered_image(&self) -> Result<String> {
        let file = self.artifacts().join("flinkdeployment.yaml");
        let yaml = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        spec_image(&yaml).with_context(|| format!("{}: no spec.image", file.display()))
    }

    /// The CLI flow's inputs for this deployment.
    pub(super) fn cli_env(&self, stand: &Stand) -> Result<Vec<(String, String)>> {
        let path = |p: &Path| p.display().to_string();
        Ok(vec![
            ("ARTIFACTS".into(), path(&self.artifacts())),
            ("IMAGE".into(), self.rendered_image()?),
            ("SCRIPT".into(), path(&self.dir.join("job.py"))),
            (
                "S3_URI".into(),
                format!("s3://{BUCKET}/{}", self.script_key()),
            ),
            ("CLUSTER".into(), CLUSTER.into()),
            ("ROLE".into(), format!("{}-role", self.name)),
            ("POLICY".into(), format!("{}-policy", self.name)),
            ("NAMESPACE".into(), NAMESPACE.into()),
            ("SERVICE_ACCOUNT".into(), self.name.clone()),
            ("NAME".into(), self.name.clone()),
            ("AWS".into(), path(&stand.aws)),
            ("KUBECTL".into(), path(&stand.kubectl)),
        ])
    }
}

/// `spec.image` of a FlinkDeployment in YAML.
fn spec_image(yaml: &str) -> Option<String> {
    let document: serde_json::Value = serde_saphyr::from_str(yaml).ok()?;
    document["spec"]["image"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_flow_pushes_the_image_the_manifest_names() {
        let yaml = "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata:\n  name: bench-cli-0\n\
                    spec:\n  image: 127.0.0.1:5000/bench/cli-0:sha256-abc\n  podTemplate:\n    spec:\n      \
                    initContainers:\n      - name: fetch\n        image: amazon/aws-cli:2.17.0\n";
        assert_eq!(
            spec_image(yaml).as_deref(),
            Some("127.0.0.1:5000/bench/cli-0:sha256-abc")
        );
        assert_eq!(spec_image("kind: FlinkDeployment\nspec: {}\n"), None);
    }

    #[test]
    fn names_are_unique_per_flow_and_run() {
        assert_eq!(deployment_name(Flow::Tool, 0), "bench-tool-0");
        assert_eq!(deployment_name(Flow::Cli, 3), "bench-cli-3");
    }
}
