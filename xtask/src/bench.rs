//! `cargo xtask bench`: measurements against the same stand-ins as the tests.

use std::path::Path;

use anyhow::{Result, bail};

pub(crate) fn run(_root: &Path, _runs: usize, _compile: bool) -> Result<()> {
    bail!("cargo xtask bench is not written yet (issue 9)")
}
