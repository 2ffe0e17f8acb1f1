//! The Dockerfile, rendered from the template in `templates/`. Pure.

use crate::spec::ImageSpec;

/// The Dockerfile template, as shipped in this crate's package.
///
/// Placeholders: `{{BASE_IMAGE}}`, `{{FLINK_VERSION}}` and `{{PLATFORM}}`. A line `#% if NAME` keeps the
/// lines up to the next `#% end` only when option `NAME` is on (`pyflink`, `connectors`);
/// other lines starting with `#%` are the template's own comments and are dropped.
pub const DOCKERFILE_TEMPLATE: &str = include_str!("../templates/flink-s3.Dockerfile.template");

/// Where the build context puts connector jars.
pub(crate) const CONNECTOR_DIR: &str = "connectors";

/// Renders the Dockerfile for `spec`. The spec is not validated here (see
/// [`ImageSpec::validate`]); [`BuildContext::new`](crate::BuildContext::new) does both.
///
/// ```
/// use flink_eks_image_builder::{ImageSpec, render_dockerfile};
/// let spec = ImageSpec::new("1.20.0", "127.0.0.1:5000/flink-s3");
/// let dockerfile = render_dockerfile(&spec);
/// assert!(dockerfile.starts_with("# The Flink image"));
/// assert!(dockerfile.contains("FROM --platform=linux/amd64 flink:1.20.0\n"));
/// assert!(dockerfile.contains("/opt/flink/opt/flink-s3-fs-hadoop-1.20.0.jar /opt/flink/plugins/s3-fs-hadoop/"));
/// assert!(dockerfile.trim_end().ends_with("USER flink"));
/// ```
pub fn render_dockerfile(spec: &ImageSpec) -> String {
    let option_on = |name: &str| match name {
        "pyflink" => spec.pyflink,
        "connectors" => !spec.connector_jars.is_empty(),
        _ => false,
    };
    let mut out = String::with_capacity(DOCKERFILE_TEMPLATE.len() + 128);
    let mut keeping = true;
    for line in DOCKERFILE_TEMPLATE.lines() {
        if let Some(name) = line.strip_prefix("#% if ") {
            keeping = option_on(name.trim());
            continue;
        }
        if line.trim() == "#% end" {
            keeping = true;
            continue;
        }
        if line.starts_with("#%") {
            continue;
        }
        if keeping {
            out.push_str(
                &line
                    .replace("{{BASE_IMAGE}}", &spec.base)
                    .replace("{{FLINK_VERSION}}", &spec.flink_version)
                    .replace("{{PLATFORM}}", &spec.platform),
            );
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConnectorJar;

    fn instructions(dockerfile: &str) -> Vec<&str> {
        dockerfile
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn default_image_copies_the_s3_plugin_into_its_own_folder_and_runs_as_flink() {
        let dockerfile = render_dockerfile(&ImageSpec::new("1.20.0", "r/x"));
        assert_eq!(
            instructions(&dockerfile),
            [
                "FROM --platform=linux/amd64 flink:1.20.0",
                "USER root",
                "COPY --from=flink:1.20.0 --chown=flink:flink /opt/flink/opt/flink-s3-fs-hadoop-1.20.0.jar /opt/flink/plugins/s3-fs-hadoop/",
                "USER flink",
            ]
        );
        assert!(!dockerfile.contains("{{"), "{dockerfile}");
        assert!(!dockerfile.contains("#%"), "{dockerfile}");
    }

    #[test]
    fn base_and_version_are_substituted_everywhere() {
        let spec = ImageSpec::new("2.0.0", "r/x").with_base("127.0.0.1:5000/my/flink:2.0.0-java17");
        let dockerfile = render_dockerfile(&spec);
        assert!(dockerfile.contains(" 127.0.0.1:5000/my/flink:2.0.0-java17\n"));
        assert!(dockerfile.contains("--from=127.0.0.1:5000/my/flink:2.0.0-java17 "));
        assert!(dockerfile.contains("flink-s3-fs-hadoop-2.0.0.jar"));
        assert!(!dockerfile.contains("1.20"));
    }

    #[test]
    fn the_platform_is_named_on_the_from_line() {
        let spec = ImageSpec::new("1.20.0", "r/x").with_platform("linux/arm64");
        let dockerfile = render_dockerfile(&spec);
        assert_eq!(
            instructions(&dockerfile)[0],
            "FROM --platform=linux/arm64 flink:1.20.0"
        );
        assert!(
            dockerfile.contains("# For linux/arm64 nodes"),
            "{dockerfile}"
        );
        assert!(!dockerfile.contains("amd64"), "{dockerfile}");
    }

    #[test]
    fn pyflink_installs_python_pip_and_the_matching_apache_flink() {
        let dockerfile = render_dockerfile(&ImageSpec::new("1.20.0", "r/x").with_pyflink(true));
        let runs: Vec<&str> = instructions(&dockerfile)
            .into_iter()
            .filter(|l| l.starts_with("RUN "))
            .collect();
        assert_eq!(runs.len(), 2, "{dockerfile}");
        assert!(runs[0].contains(
            "apt-get install -y --no-install-recommends python3 python3-pip python3-dev"
        ));
        assert!(runs[0].contains("ln -sf /usr/bin/python3 /usr/bin/python"));
        assert!(runs[1].contains(r#"pip3 install --no-cache-dir "apache-flink==1.20.0""#));
        // Installed as root, run as flink.
        let text = instructions(&dockerfile);
        let user_flink = text.iter().rposition(|l| *l == "USER flink").unwrap();
        let last_run = text.iter().rposition(|l| l.starts_with("RUN ")).unwrap();
        assert!(last_run < user_flink);
        assert_eq!(text.last(), Some(&"USER flink"));
    }

    #[test]
    fn connectors_go_to_lib_owned_by_flink_and_only_when_given() {
        let without = render_dockerfile(&ImageSpec::new("1.20.0", "r/x"));
        assert!(!without.contains("connectors/"));
        let with = render_dockerfile(
            &ImageSpec::new("1.20.0", "r/x")
                .with_connector_jar(ConnectorJar::new("kafka.jar", vec![1])),
        );
        assert!(with.contains("COPY --chown=flink:flink connectors/ /opt/flink/lib/\n"));
        assert!(!with.contains("python3"));
    }

    #[test]
    fn the_template_has_only_known_options_and_placeholders() {
        let mut depth = 0;
        for line in DOCKERFILE_TEMPLATE.lines() {
            if let Some(name) = line.strip_prefix("#% if ") {
                assert!(matches!(name.trim(), "pyflink" | "connectors"), "{line}");
                assert_eq!(depth, 0, "nested blocks are not supported");
                depth += 1;
            } else if line.trim() == "#% end" {
                depth -= 1;
            }
            let rest = line
                .replace("{{BASE_IMAGE}}", "")
                .replace("{{FLINK_VERSION}}", "")
                .replace("{{PLATFORM}}", "");
            if !line.starts_with("#%") {
                assert!(!rest.contains("{{"), "unknown placeholder: {line}");
            }
        }
        assert_eq!(depth, 0);
    }
}
