//! Plans the Flink S3 image against the registry, prints the plan, and applies it: builds and
//! pushes, or says the registry already holds it.
//!
//! ```text
//! cargo run -p flink-eks-image-builder --example ensure -- REPOSITORY [BASE] [--pyflink] [--jar PATH]... [--tag TAG] [--pull never|if-missing|always]
//! ```
//!
//! Credentials come from FLINK_EKS_REGISTRY_USERNAME/PASSWORD, the Docker config file, or
//! ECR. Progress goes to stderr; the image reference to stdout. `RUST_LOG` turns on logs.

use flink_eks_image_builder::{
    BuildContext, ConnectorJar, CredentialResolver, ImageBuilder, ImageSpec, ProgressEvent,
};

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if let Err(err) = run().await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut pyflink = false;
    let mut jars = Vec::new();
    let mut tag = None;
    let mut pull = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pyflink" => pyflink = true,
            "--jar" => jars.push(ConnectorJar::from_path(
                args.next().ok_or("--jar needs a path")?,
            )?),
            "--tag" => tag = Some(args.next().ok_or("--tag needs a value")?),
            "--pull" => pull = Some(args.next().ok_or("--pull needs a policy")?.parse()?),
            _ => positional.push(arg),
        }
    }
    let repository = positional.first().ok_or(
        "usage: ensure REPOSITORY [BASE] [--pyflink] [--jar PATH]... [--tag TAG] [--pull POLICY]",
    )?;
    let mut spec = ImageSpec::new("1.20.0", repository.as_str()).with_pyflink(pyflink);
    if let Some(base) = positional.get(1) {
        spec = spec.with_base(base.as_str());
    }
    spec.connector_jars = jars;
    spec.tag = tag;
    if let Some(pull) = pull {
        spec.pull_policy = pull;
    }
    let registry = spec.parsed_repository()?.registry().to_owned();
    let credentials = CredentialResolver::from_environment()?
        .resolve(&registry)
        .await?;
    let context = BuildContext::new(&spec)?;
    let plan = flink_eks_image_builder::plan(&spec, &context, &credentials).await?;
    eprintln!("plan: {}", plan.operation());
    let builder = ImageBuilder::connect().await?;
    let outcome = builder
        .apply(&plan, &spec, &context, &credentials, &print_event)
        .await?;
    println!("{}", outcome.image);
    Ok(())
}

/// One line on stderr per notable event (a program would draw bars; this is an example).
fn print_event(event: &ProgressEvent) {
    match event {
        ProgressEvent::UpToDate { image } => {
            eprintln!("{image} is already in the registry: nothing to build or push");
        }
        ProgressEvent::TagHoldsOtherContent { image, .. } => {
            eprintln!("{image} holds another build: rebuilding");
        }
        ProgressEvent::PullingBase { image } => eprintln!("pulling base image {image}"),
        ProgressEvent::BuildStep { step } => eprintln!("{step}"),
        ProgressEvent::Built { image, id } => eprintln!("built {image} ({id})"),
        ProgressEvent::LayerDone { layer, .. } => eprintln!("  layer {layer} in the registry"),
        ProgressEvent::Pushed { image, .. } => eprintln!("pushed {image}"),
        _ => {}
    }
}
