//! Notebooks as training entries: a `[train] command` that runs a `.ipynb` (`["python3",
//! "digits.ipynb"]`, or just `["digits.ipynb"]`) runs it through our runner, `runner.py`, with
//! nbclient and an IPython kernel in the image. The runner is written into the iteration's own
//! directory (`/mlops`, which reaches every engine with the parameters), so it always matches this
//! binary; it prints each cell's output as it arrives and keeps the executed notebook in `/mlops`.

use std::path::{Path, PathBuf};

use crate::core::notebook::is_notebook;
use crate::support::fsutil;

/// The runner's source, shipped inside the binary.
const RUNNER: &str = include_str!("runner.py");
/// Where the runner is written, in the iteration's directory (`/mlops` in the container).
const RUNNER_FILE: &str = ".notebook-runner.py";
/// Suffix of the executed notebook kept in the iteration's directory: `digits.executed.ipynb`.
pub const EXECUTED_SUFFIX: &str = ".executed.ipynb";

/// The notebook `command` runs, if it runs one: its first argument ending in `.ipynb` when the
/// program is a Python interpreter, or the program itself.
pub fn notebook_of(command: &[String]) -> Option<&str> {
    let (program, args) = command.split_first()?;
    if is_notebook(program) {
        return Some(program);
    }
    let python = program
        .rsplit('/')
        .next()
        .is_some_and(|p| p.starts_with("python"));
    args.first()
        .filter(|a| python && is_notebook(a))
        .map(String::as_str)
}

/// `command` as the container runs it: a notebook goes through the runner, which writes the
/// executed copy to `/mlops/<stem>.executed.ipynb`; anything else is unchanged.
pub fn container_command(command: Vec<String>) -> Vec<String> {
    let Some(nb) = notebook_of(&command).map(str::to_owned) else {
        return command;
    };
    let program = match is_notebook(&command[0]) {
        true => "python3".to_string(),
        false => command[0].clone(),
    };
    vec![
        program,
        format!("/mlops/{RUNNER_FILE}"),
        nb.clone(),
        format!("/mlops/{}", executed_name(&nb)),
    ]
}

/// `notebooks/digits.ipynb` → `digits.executed.ipynb`.
pub fn executed_name(notebook: &str) -> String {
    let file = notebook.rsplit('/').next().unwrap_or(notebook);
    let stem = file.strip_suffix(".ipynb").unwrap_or(file);
    format!("{stem}{EXECUTED_SUFFIX}")
}

/// Writes the runner into the iteration's directory when the command runs a notebook.
pub fn install(workdir: &Path, command: &[String]) -> std::io::Result<()> {
    if notebook_of(command).is_none() {
        return Ok(());
    }
    fsutil::write_atomic(&workdir.join(RUNNER_FILE), RUNNER.as_bytes())
}

/// The executed notebook an iteration's directory holds, if any.
pub fn executed(workdir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(workdir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(EXECUTED_SUFFIX))
        })
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_notebook_command_goes_through_the_runner() {
        assert_eq!(
            container_command(argv(&["python3", "nb/digits.ipynb"])),
            argv(&[
                "python3",
                "/mlops/.notebook-runner.py",
                "nb/digits.ipynb",
                "/mlops/digits.executed.ipynb"
            ])
        );
        assert_eq!(
            container_command(argv(&["digits.ipynb"]))[..2],
            argv(&["python3", "/mlops/.notebook-runner.py"])
        );
        let plain = argv(&["python3", "train.py", "--data", "x.ipynb"]);
        assert_eq!(container_command(plain.clone()), plain);
        assert_eq!(notebook_of(&argv(&["bash", "x.ipynb"])), None);
    }

    #[test]
    fn the_runner_is_written_only_for_a_notebook() {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path(), &argv(&["python3", "train.py"])).unwrap();
        assert!(!dir.path().join(RUNNER_FILE).exists());
        install(dir.path(), &argv(&["python3", "a.ipynb"])).unwrap();
        let runner = std::fs::read_to_string(dir.path().join(RUNNER_FILE)).unwrap();
        assert!(runner.contains("from nbclient import NotebookClient"));
        std::fs::write(dir.path().join("a.executed.ipynb"), "{}").unwrap();
        assert_eq!(
            executed(dir.path()),
            Some(dir.path().join("a.executed.ipynb"))
        );
    }
}
