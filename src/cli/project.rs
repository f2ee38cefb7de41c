//! `detect`, `init` and `notify --test`: what a project's directory holds and says.

use std::path::PathBuf;

use super::{CliError, project_dir};
use crate::adapters::images;
use crate::core::config::{self, Config};
use crate::core::detect;
use crate::core::text::escaped_lines;
use crate::support::{config_file, source_tree};

/// `notify --test`: one test message through every configured channel; exit 1 if any failed.
pub(super) async fn notify_cmd(path: Option<PathBuf>, test: bool) -> Result<i32, CliError> {
    if !test {
        return Err(CliError::Message(
            "say `mlops-tui notify --test [PATH]` to send a test message".into(),
        ));
    }
    let dir = project_dir(path)?;
    let cfg = config_file::load_dir(&dir)?;
    let project = dir.canonicalize().unwrap_or(dir).display().to_string();
    let results = crate::adapters::notify::send_test(&cfg.notify, &project).await;
    if results.is_empty() {
        println!("no notification channel is configured in [notify]");
    }
    let mut failed = 0;
    for (channel, result) in results {
        match result {
            Ok(()) => println!("{channel}: sent"),
            Err(e) => {
                failed += 1;
                println!("{channel}: failed: {e}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `detect`: the verdict and its evidence, file:line.
pub(super) fn detect_cmd(path: Option<PathBuf>) -> Result<i32, CliError> {
    let dir = project_dir(path)?;
    let tree = source_tree::read(&dir)?;
    let verdict = detect::detect(&tree)?;
    println!("{}", verdict.summary());
    let config = config_file::load_dir(&dir).ok();
    if let Some(note) = images::cuda::detect_note(config.as_ref(), verdict.profile()) {
        println!("{note}");
    }
    println!("evidence:");
    for e in &verdict.evidence {
        let line = format!("  {}  {}  ({})", e.at(), e.symbol, e.meaning);
        println!("{}", escaped_lines(&line));
    }
    println!("scanned {} Python file(s)", verdict.scanned.len());
    print_imports(&tree, verdict.profile());
    Ok(0)
}

/// The third-party imports and whether the detected profile provides each (else the fix).
fn print_imports(tree: &detect::SourceTree, profile: &str) {
    let imports = detect::imports(tree);
    if imports.is_empty() {
        return;
    }
    let provides = |m: &str| images::profile(profile).is_some_and(|p| p.provides(m));
    println!("third-party imports (image {profile}):");
    for i in &imports {
        let note = if provides(&i.module) {
            "provided".to_owned()
        } else if i.optional {
            "not provided, but optional: its ImportError is caught".to_owned()
        } else {
            format!(
                "not provided: list `{}` in requirements.txt",
                detect::package_name(&i.module)
            )
        };
        let line = format!("  {}  {}  ({note})", i.at(), i.module);
        println!("{}", escaped_lines(&line));
    }
}

/// `init`: a commented `mlops.toml` written from what is detected.
pub(super) fn init_cmd(path: Option<PathBuf>, force: bool) -> Result<i32, CliError> {
    let dir = project_dir(path)?;
    let target = dir.join(config::FILE_NAME);
    if target.exists() && !force {
        return Err(CliError::Message(format!(
            "{} exists; use --force to overwrite it",
            target.display()
        )));
    }
    let sources = source_tree::read(&dir)?.sources();
    let verdict = detect::detect_sources(&dir, &sources)?;
    let discovery = crate::core::knobs::discover(&verdict, &sources);
    let env = config::template::Environment {
        dockerfile: dir.join("Dockerfile").is_file(),
        requirements: dir.join("requirements.txt").is_file(),
    };
    let text = config::template::for_project(&verdict, &discovery, env);
    // The template must always parse: a file we write is a file we accept.
    Config::parse(&text, &target)?;
    crate::support::fsutil::write_atomic(&target, text.as_bytes())
        .map_err(|e| CliError::Message(format!("{}: {e}", target.display())))?;
    println!("wrote {} ({})", target.display(), verdict.summary());
    if let Some(entry) = &discovery.entry {
        println!("command: python3 {}", escaped_lines(entry));
    }
    if !discovery.knobs.is_empty() {
        println!(
            "{} knob(s) found in the code, commented out in [tweak.space]: uncomment the ones to tune",
            discovery.knobs.len()
        );
    }
    for f in &discovery.files.state {
        println!(
            "keep = [\"{}\"]: {} reads it, {} writes it; each iteration starts with the previous one's",
            f.path, f.read, f.written
        );
    }
    if let Some((file, at)) = &discovery.files.metric_file {
        println!("metric.file = \"{file}\": {at} writes the result there");
    }
    Ok(0)
}
