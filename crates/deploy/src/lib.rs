//! The flink-eks deploy pipeline as a library: what `cargo xtask deploy` does, for a program
//! of your own (another project's xtask, a service) to call.
//!
//! 1. [`Config`] reads a `deploy.toml` with its `FLINK_EKS_*` and `--set` overrides, and
//!    [`Inputs`] turns it into each crate's input, checked by that crate's rules before
//!    anything is touched.
//! 2. [`plan`] asks every service what exists, all at once, and returns a [`DeployPlan`]: each
//!    step of the [`GRAPH`] with the typed plan its crate made. [`dry_plan`] names the same
//!    resources without reading anything.
//! 3. [`execute`] carries out exactly that plan, wave by wave along the graph, reporting
//!    [`Event`]s; a plan with nothing to write sends nothing.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use flink_eks_deploy::{Config, Event, Inputs, Remote, Step, execute, plan};
//!
//! let config = Config::load("deploy.toml".as_ref(), &[])?;
//! let inputs = Inputs::from_config(&config)?;
//! let remote = Remote::connect(&config, None, true).await?;
//! let plan = plan(&remote, &inputs, &[]).await?;
//! print!("{plan}");
//! if !plan.is_noop() {
//!     execute(&remote, &inputs, plan, &|event: &Event| eprintln!("{event:?}")).await?;
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod cache;
mod clients;
mod commands;
pub mod config;
pub mod doctor;
mod error;
mod event;
mod execute;
mod graph;
mod inputs;
mod local;
mod plan;
mod state;

pub use cache::CACHE_DIR_ENV;
pub use clients::Remote;
pub use commands::{TeardownOptions, delete, logs, status, teardown, verify_irsa};
pub use config::{Config, Override};
pub use error::{Failure, classify, failure_of};
pub use event::Event;
pub use execute::{dry_plan, execute, plan, write_artifacts};
pub use graph::{GRAPH, Step, describe_order, waves};
pub use inputs::{Inputs, Script, write_artifact};
pub use local::{LocalOptions, local_job, run_local};
pub use plan::{Blocker, DeployPlan, LocalAction, MANIFEST_KIND, Row, RowAction, StepPlan, Work};
pub use state::{RECENT_SAVEPOINT, lacks_recent_savepoint, resume, savepoint, state_info, suspend};

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
