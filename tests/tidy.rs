//! Repository rules that a quick read can check, in the manner of rust-analyzer's `tidy.rs`:
//! every crate documents itself, no test is ignored without a reason, library code does not
//! `unwrap()`, and no path of a developer's machine is written into the project.

use std::path::{Path, PathBuf};

use flink_eks_tests::workspace_root;

/// The crates that are meant to be read and reused on their own.
const LIBRARY_CRATES: &[&str] = &[
    "crates/image-builder",
    "crates/irsa",
    "crates/manifest",
    "crates/submit",
];

/// Every package in the workspace.
fn packages() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut dirs: Vec<PathBuf> = LIBRARY_CRATES.iter().map(|c| root.join(c)).collect();
    dirs.extend(["xtask", "tests", "tests/kube-standin"].map(|d| root.join(d)));
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

/// The file's lines, with `None` for the lines of `#[cfg(test)]` modules.
fn code_outside_tests(text: &str) -> Vec<Option<&str>> {
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
