//! Repository rules that a quick read can check, in the manner of rust-analyzer's `tidy.rs`:
//! every crate documents itself, no test is ignored without a reason, library code does not
//! `unwrap()`, and no path of a developer's machine is written into the project.

use std::path::{Path, PathBuf};

use flink_eks_tests::workspace_root;

/// The crates that are meant to be read and reused on their own.
const LIBRARY_CRATES: &[&str] = &[
    "crates/deploy",
    "crates/image-builder",
    "crates/irsa",
    "crates/manifest",
    "crates/plan",
    "crates/rbac",
    "crates/submit",
];

/// Every package in the workspace.
fn packages() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut dirs: Vec<PathBuf> = LIBRARY_CRATES.iter().map(|c| root.join(c)).collect();
    dirs.extend(["xtask", "tests", "tests/kube-standin", "tests/devtools"].map(|d| root.join(d)));
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "tidy found only {} Rust files: is the workspace root right?",
        files.len()
    );
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_package_has_a_readme_and_a_crate_doc() {
    let mut problems = Vec::new();
    for dir in packages() {
        if !dir.join("README.md").is_file() && dir != workspace_root().join("tests") {
            problems.push(format!("{}: no README.md", dir.display()));
        }
        let entry = ["src/lib.rs", "src/main.rs"]
            .map(|f| dir.join(f))
            .into_iter()
            .find(|p| p.is_file());
        match entry {
            None => problems.push(format!("{}: no src/lib.rs or src/main.rs", dir.display())),
            Some(entry) => {
                let text = read(&entry);
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default();
                if !first.starts_with("//!") {
                    problems.push(format!(
                        "{}: does not open with a `//!` crate doc",
                        entry.display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn library_crate_docs_have_an_example() {
    let mut problems = Vec::new();
    for krate in LIBRARY_CRATES {
        let lib = workspace_root().join(krate).join("src/lib.rs");
        let doc: String = read(&lib)
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        if !doc.contains("```") {
            problems.push(format!("{}: the crate doc has no example", lib.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The attribute without a reason, spelled in two halves so that this file does not match
/// the repository's own text searches for it.
const BARE_IGNORE: &str = concat!("#[ig", "nore]");

#[test]
fn no_ignored_test_without_a_reason() {
    let mut problems = Vec::new();
    for file in all_rust_files() {
        for (i, line) in read(&file).lines().enumerate() {
            let line = line.trim();
            if line.starts_with(BARE_IGNORE) {
                problems.push(format!(
                    "{}:{}: {BARE_IGNORE} without a reason",
                    file.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Library code returns errors; `unwrap()` is for tests, where a panic is the report.
#[test]
fn no_unwrap_in_library_code() {
    let mut problems = Vec::new();
    for krate in LIBRARY_CRATES {
        let mut files = Vec::new();
        rust_files(&workspace_root().join(krate).join("src"), &mut files);
        for file in files {
            for (i, line) in code_outside_tests(&read(&file)).into_iter().enumerate() {
                let Some(line) = line else { continue };
                if line.contains(".unwrap()") && !line.trim_start().starts_with("//") {
                    problems.push(format!(
                        "{}:{}: unwrap() in library code",
                        file.display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The file's lines, with `None` for the lines of `#[cfg(test)]` modules (all of them for a
/// module file that is test code as a whole, `#![cfg(test)]`).
fn code_outside_tests(text: &str) -> Vec<Option<&str>> {
    if text.lines().any(|l| l.trim() == "#![cfg(test)]") {
        return text.lines().map(|_| None).collect();
    }
    let mut out = Vec::new();
    let mut in_test: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if in_test.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if pending_cfg_test && opens > 0 {
            in_test = Some(depth);
            pending_cfg_test = false;
        }
        out.push(if in_test.is_some() || pending_cfg_test {
            None
        } else {
            Some(line)
        });
        depth = (depth + opens).saturating_sub(closes);
        if in_test.is_some_and(|start| depth <= start) {
            in_test = None;
        }
    }
    out
}

#[test]
fn cfg_test_detection_skips_test_modules_only() {
    let text = "fn a() { x.unwrap_or(1) }\n#[cfg(test)]\nmod tests {\n    fn b() {\n        y.unwrap();\n    }\n}\nfn c() { z.unwrap() }\n";
    let kept: Vec<_> = code_outside_tests(text).into_iter().flatten().collect();
    assert_eq!(kept, ["fn a() { x.unwrap_or(1) }", "fn c() { z.unwrap() }"]);
}

#[test]
fn no_machine_paths_in_the_project() {
    let mut problems = Vec::new();
    // Quoted absolute paths of the machines this project is developed on, built from their
    // names so that this file does not match its own search.
    let needles = ["work", "farm", "tmp/svc", "root"].map(|p| format!("\"/{p}/"));
    for file in all_rust_files() {
        for (i, line) in read(&file).lines().enumerate() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                problems.push(format!(
                    "{}:{}: a path of this machine: {}",
                    file.display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = workspace_root();
    let ci = read(&root.join(".ci/run"));
    let readme = read(&root.join("README.md"));
    assert!(
        ci.lines().any(|l| l.trim() == "cargo xtask test"),
        ".ci/run must run `cargo xtask test`"
    );
    assert!(
        readme.contains("cargo xtask test"),
        "README.md must give the test command"
    );
    assert!(
        readme.contains("cargo xtask deploy --dry-run --config examples/deploy.toml"),
        "README.md must give the dry run on the example config"
    );
}

/// The packages that ship: the deploy binary and the pipeline library behind it.
const SHIPPED_PACKAGES: &[&str] = &["xtask", "flink-eks-deploy"];

/// The test helpers and the dev tooling, which nothing that ships may link.
const TEST_ONLY_PACKAGES: &[&str] = &["flink-eks-tests", "kube-standin", "flink-eks-devtools"];

/// The packages that `from` links, by name, each with the chain of names that reaches it:
/// normal dependencies only (what `cargo tree -e normal` shows), from `cargo metadata`.
fn normal_dependencies(metadata: &serde_json::Value, from: &str) -> Vec<(String, Vec<String>)> {
    let name_of = |id: &str| -> String {
        metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(id)
            .to_owned()
    };
    let nodes: Vec<&serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let Some(start) = nodes
        .iter()
        .find(|n| n["id"].as_str().map(name_of).as_deref() == Some(from))
    else {
        return Vec::new();
    };
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    let mut queue = vec![(
        start["id"].as_str().unwrap_or_default().to_owned(),
        vec![from.to_owned()],
    )];
    while let Some((id, chain)) = queue.pop() {
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            let Some(dep_id) = dep["pkg"].as_str().filter(|_| normal) else {
                continue;
            };
            let name = name_of(dep_id);
            if seen.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let mut dep_chain = chain.clone();
            dep_chain.push(name.clone());
            seen.push((name, dep_chain.clone()));
            queue.push((dep_id.to_owned(), dep_chain));
        }
    }
    seen
}

/// The workspace's `cargo metadata`, with the resolved dependency graph.
fn cargo_metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1"])
        .output()
        .expect("cannot run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata printed no JSON")
}

/// Crates that do network or process IO, which the pure crates must not link.
const IO_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "reqwest",
    "aws-config",
    "aws-smithy-runtime",
    "kube-client",
    "bollard",
    "mio",
];

/// The step crates and their vocabulary, each publishable alone, below the pipeline.
const STEP_PACKAGES: &[&str] = &[
    "flink-eks-plan",
    "flink-eks-manifest",
    "flink-eks-image-builder",
    "flink-eks-irsa",
    "flink-eks-rbac",
    "flink-eks-submit",
];

/// The names of the crates in `package`'s normal dependency tree, built alone.
fn normal_tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .expect("cannot run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn dependencies_point_one_way() {
    let metadata = cargo_metadata();
    let mut problems = Vec::new();
    // The pure crates do no IO: nothing in their normal tree, built alone, can. (`cargo
    // tree -p` resolves features for the package alone; `cargo metadata` unifies them across
    // the workspace, where kube's client is on for the other crates.)
    for pure in ["flink-eks-plan", "flink-eks-manifest"] {
        let linked = normal_tree(pure);
        assert!(
            linked.iter().any(|name| name == "serde"),
            "the tree of {pure} as cargo prints it: {linked:?}"
        );
        for name in linked {
            if IO_CRATES.contains(&name.as_str()) {
                problems.push(format!("{pure} does no IO, yet links {name} (`cargo tree -p {pure} -e normal -i {name}`)"));
            }
        }
    }
    // The library crates stand alone: none reaches the pipeline or the command line, and
    // the shared vocabulary reaches no other crate of the workspace.
    for library in STEP_PACKAGES {
        for (name, chain) in normal_dependencies(&metadata, library) {
            let upward = ["flink-eks-deploy", "xtask"].contains(&name.as_str())
                || (*library == "flink-eks-plan" && name.starts_with("flink-eks-"));
            if upward {
                problems.push(format!("{library} links {name}: {}", chain.join(" -> ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_deploy_binary_links_no_test_or_dev_crate() {
    let metadata = cargo_metadata();
    let mut problems = Vec::new();
    for shipped in SHIPPED_PACKAGES {
        let linked = normal_dependencies(&metadata, shipped);
        if *shipped == "xtask" {
            // The walk itself works: xtask is there and links the crates it deploys with.
            assert!(
                linked.iter().any(|(name, _)| name == "flink-eks-manifest"),
                "xtask's normal dependencies as read from cargo metadata lack flink-eks-manifest: {linked:?}"
            );
        }
        for (name, chain) in linked {
            if TEST_ONLY_PACKAGES.contains(&name.as_str()) {
                problems.push(format!("{shipped} links {name}: {}", chain.join(" -> ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_dependency_walk_follows_normal_edges_only() {
    let metadata = serde_json::json!({
        "packages": [
            {"id": "a", "name": "xtask"},
            {"id": "b", "name": "flink-eks-deploy"},
            {"id": "c", "name": "flink-eks-tests"},
            {"id": "d", "name": "cc"},
            {"id": "e", "name": "kube-standin"},
        ],
        "resolve": {"nodes": [
            {"id": "a", "deps": [
                {"pkg": "b", "dep_kinds": [{"kind": null}]},
                {"pkg": "e", "dep_kinds": [{"kind": "dev"}]},
            ]},
            {"id": "b", "deps": [
                {"pkg": "c", "dep_kinds": [{"kind": null}]},
                {"pkg": "d", "dep_kinds": [{"kind": "build"}]},
            ]},
            {"id": "c", "deps": []},
            {"id": "d", "deps": []},
            {"id": "e", "deps": []},
        ]},
    });
    let linked = normal_dependencies(&metadata, "xtask");
    assert_eq!(
        linked,
        [
            (
                "flink-eks-deploy".to_owned(),
                vec!["xtask".to_owned(), "flink-eks-deploy".to_owned()]
            ),
            (
                "flink-eks-tests".to_owned(),
                ["xtask", "flink-eks-deploy", "flink-eks-tests"]
                    .map(String::from)
                    .to_vec()
            ),
        ]
    );
    assert!(normal_dependencies(&metadata, "absent").is_empty());
}
