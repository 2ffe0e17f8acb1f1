//! YAML in and out, through serde-saphyr.

use kube::Resource as _;

use crate::{Error, FlinkDeployment};

/// Renders a FlinkDeployment as a YAML document, ready for `kubectl apply -f`.
///
/// Maps are sorted and fields keep their declared order, so the same object always renders
/// the same bytes. Multi-line strings (the fetch script) are literal blocks; single-line
/// strings stay on one line however long (an image reference is not folded with `>-`).
pub fn to_yaml(deployment: &FlinkDeployment) -> Result<String, Error> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(deployment, options).map_err(|e| Error::RenderYaml {
        message: e.to_string(),
    })
}

/// Reads a FlinkDeployment from a YAML document. Fields the types do not name are ignored;
/// a document of another kind or API version is an error.
pub fn from_yaml(yaml: &str) -> Result<FlinkDeployment, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TypeMeta {
        api_version: Option<String>,
        kind: Option<String>,
    }
    let parse_error = |e: serde_saphyr::Error| Error::ParseYaml {
        message: e.to_string(),
    };
    let type_meta: TypeMeta = serde_saphyr::from_str(yaml).map_err(parse_error)?;
    let expected_api_version = FlinkDeployment::api_version(&());
    let expected_kind = FlinkDeployment::kind(&());
    if type_meta.api_version.as_deref() != Some(&*expected_api_version)
        || type_meta.kind.as_deref() != Some(&*expected_kind)
    {
        return Err(Error::ParseYaml {
            message: format!(
                "the document has apiVersion {:?} and kind {:?}, not {expected_api_version} \
                 {expected_kind}",
                type_meta.api_version.unwrap_or_default(),
                type_meta.kind.unwrap_or_default()
            ),
        });
    }
    serde_saphyr::from_str(yaml).map_err(parse_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlinkVersion, LifecycleState, UpgradeMode};

    /// A live object as `kubectl get -o yaml` shows it: server-set metadata, fields this crate
    /// does not model (ingress), and a status.
    const LIVE: &str = r#"
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: basic-example
  namespace: default
  generation: 2
  resourceVersion: "12345"
  uid: 0b6f5d0e-2c8b-4b8e-9a3e-1d2f3a4b5c6d
spec:
  image: flink:1.20
  flinkVersion: v1_20
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
  ingress:
    template: "{{name}}.example.com"
  serviceAccount: flink
  jobManager:
    resource:
      memory: 2048m
      cpu: 1
  taskManager:
    resource:
      memory: 2048m
      cpu: 1
  job:
    jarURI: local:///opt/flink/examples/streaming/StateMachineExample.jar
    parallelism: 2
    upgradeMode: stateless
status:
  lifecycleState: STABLE
  jobStatus:
    state: RUNNING
  observedGeneration: 2
"#;

    #[test]
    fn reads_a_live_object_with_fields_it_does_not_model() {
        let deployment = from_yaml(LIVE).unwrap();
        assert_eq!(deployment.metadata.generation, Some(2));
        assert_eq!(deployment.spec.flink_version, Some(FlinkVersion::V1_20));
        assert_eq!(
            deployment.spec.job.as_ref().unwrap().upgrade_mode,
            Some(UpgradeMode::Stateless)
        );
        assert_eq!(
            deployment
                .spec
                .job_manager
                .as_ref()
                .unwrap()
                .resource
                .as_ref()
                .unwrap()
                .cpu,
            Some(1.0)
        );
        let status = deployment.status.as_ref().unwrap();
        assert_eq!(status.lifecycle_state, Some(LifecycleState::Stable));
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn a_document_that_is_not_a_flink_deployment_is_an_error() {
        let err = from_yaml("apiVersion: v1\nkind: [").unwrap_err();
        assert!(matches!(err, Error::ParseYaml { .. }), "{err}");
        let err =
            from_yaml(&LIVE.replace("kind: FlinkDeployment", "kind: FlinkSessionJob")).unwrap_err();
        assert!(matches!(err, Error::ParseYaml { .. }), "{err}");
        let err = from_yaml(&LIVE.replace("v1_20", "v9_9")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not read a FlinkDeployment"),
            "{err}"
        );
    }
}
