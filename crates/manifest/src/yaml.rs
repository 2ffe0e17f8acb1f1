//! YAML in and out, through serde-saphyr.

use crate::{FlinkDeployment, ManifestError};

/// Renders a FlinkDeployment as a YAML document, ready for `kubectl apply -f`.
///
/// Maps are sorted and fields keep their declared order, so the same object always renders
/// the same bytes.
pub fn to_yaml(deployment: &FlinkDeployment) -> Result<String, ManifestError> {
    serde_saphyr::to_string(deployment).map_err(|e| ManifestError::RenderYaml {
        message: e.to_string(),
    })
}

/// Reads a FlinkDeployment from a YAML document. Fields the types do not name are ignored.
pub fn from_yaml(yaml: &str) -> Result<FlinkDeployment, ManifestError> {
    serde_saphyr::from_str(yaml).map_err(|e| ManifestError::ParseYaml {
        message: e.to_string(),
    })
}
