//! `images build` and `images list`: the built-in profiles.

use super::{CliError, ImagesCommand};
use crate::adapters::backend::ContainerBackend;
use crate::adapters::docker::DockerBackend;
use crate::adapters::images;

pub(super) async fn images_cmd(command: ImagesCommand) -> Result<i32, CliError> {
    match command {
        ImagesCommand::List => {
            for p in images::PROFILES {
                println!("{:<8} {:<32} {}", p.name, p.tag(), p.summary);
            }
            // Several GB each: built on first use by a run with [resources] gpus, or when named.
            for p in images::cuda::CUDA_PROFILES {
                println!(
                    "{:<8} {:<32} {} (on demand: images build {})",
                    p.name,
                    p.tag(),
                    p.summary,
                    p.name
                );
            }
            Ok(0)
        }
        ImagesCommand::Build { profiles } => {
            let names: Vec<String> = if profiles.is_empty() {
                images::PROFILES
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect()
            } else {
                profiles
            };
            let mut wanted = Vec::new();
            for n in &names {
                let Some(p) = images::profile(n) else {
                    let known: Vec<_> = images::PROFILES
                        .iter()
                        .chain(images::cuda::CUDA_PROFILES)
                        .map(|p| p.name)
                        .collect();
                    return Err(CliError::Message(format!(
                        "unknown profile \"{n}\" (known: {})",
                        known.join(", ")
                    )));
                };
                wanted.push(p);
            }
            let backend = DockerBackend::connect_default()?;
            backend.ping().await?;
            for p in wanted {
                let n = p.name;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let printer = tokio::spawn(async move {
                    while let Some(line) = rx.recv().await {
                        println!("[image] {line}");
                    }
                });
                let result = backend
                    .prepare_image(&crate::core::model::ImageSpec::Profile(p), tx)
                    .await;
                let _ = printer.await;
                let tag = result?;
                println!("{n}: {tag} ready");
            }
            Ok(0)
        }
    }
}
