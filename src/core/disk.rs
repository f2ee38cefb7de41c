//! `[resources] disk`: what an iteration's container holds under `/workspace` and `/mlops`, and the
//! words for a container stopped because it holds too much. A script that fills the disk does so
//! whatever its parameters: the run stops, and the message says what to delete or shrink.

use crate::core::units::ByteSize;

/// What a container holds under its writable roots, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Everything under `/workspace` and `/mlops`.
    pub total: u64,
    /// Each root (`/workspace`, `/mlops`) and what it holds.
    pub roots: Vec<(String, u64)>,
    /// Entries up to two levels below the roots (`/workspace/junk`, `/workspace/junk/a.bin`), as
    /// the container sees them; any order.
    pub biggest: Vec<(String, u64)>,
}

/// Entries named in the message.
const NAMED: usize = 5;
/// A root holding less than this is not named as where the data went (a few bytes of
/// `params.json` beside gigabytes in `/workspace`).
const ROOT_NOTABLE: u64 = 1 << 20;

/// The biggest entries to delete or shrink, largest first: at most [`NAMED`], each holding at least
/// a twentieth of `total` (a 4 KiB `params.json` is not what filled the disk), never an entry inside
/// one already named (a directory and its own file would count the same bytes twice).
pub fn to_name(biggest: &[(String, u64)], total: u64) -> Vec<(String, u64)> {
    let mut sorted: Vec<&(String, u64)> = biggest
        .iter()
        .filter(|(_, n)| *n > 0 && n.saturating_mul(20) >= total)
        .collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut named: Vec<(String, u64)> = Vec::new();
    for (path, size) in sorted {
        let nested = named
            .iter()
            .any(|(p, _)| inside(path, p) || inside(p, path));
        if !nested {
            named.push((path.clone(), *size));
        }
        if named.len() == NAMED {
            break;
        }
    }
    named
}

/// Whether `path` lies below `dir`.
fn inside(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// `/workspace/junk (5.0 GiB), /workspace/x.bin (300 MiB)`.
pub fn list(entries: &[(String, u64)]) -> String {
    entries
        .iter()
        .map(|(p, n)| format!("{p} ({})", ByteSize(*n).approx()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the data went: `in /workspace`, or `in /workspace (5.0 GiB) and /mlops (20 MiB)`.
fn where_written(usage: &DiskUsage) -> String {
    let mut roots: Vec<&(String, u64)> = usage.roots.iter().collect();
    roots.sort_by_key(|r| std::cmp::Reverse(r.1));
    let notable: Vec<&&(String, u64)> = roots.iter().filter(|(_, n)| *n >= ROOT_NOTABLE).collect();
    match notable.as_slice() {
        [] | [_] => match roots.first() {
            Some((root, _)) => format!("in {root}"),
            None => "in /workspace and /mlops".into(),
        },
        many => format!(
            "in {}",
            many.iter()
                .map(|(r, n)| format!("{r} ({})", ByteSize(*n).approx()))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// Why the container was killed, what to do, and where the setting is:
/// `it wrote 5.1 GiB in /workspace, over [resources] disk = "300m" (mlops.toml:7); delete or shrink
/// /workspace/junk (5.0 GiB), or raise [resources] disk`. `at` is `mlops.toml:7`, or `None` for the
/// default.
pub fn over_limit(usage: &DiskUsage, limit: ByteSize, at: Option<&str>) -> String {
    let setting = match at {
        Some(at) => format!("[resources] disk = \"{limit}\" ({at})"),
        None => format!("[resources] disk = \"{limit}\" (the default)"),
    };
    let named = to_name(&usage.biggest, usage.total);
    let what = if named.is_empty() {
        "what the script writes".to_string()
    } else {
        list(&named)
    };
    format!(
        "it wrote {} {}, over {setting}: killed at once; delete or shrink {what}, or raise \
         [resources] disk",
        ByteSize(usage.total).approx(),
        where_written(usage)
    )
}

/// What was removed from this machine's copy of the iteration's directory (`runs/1/iter-1`), so it
/// does not keep what the container should not have written: `removed from runs/1/iter-1 on this
/// machine: workspace/junk/f3 (300 MiB), … and 14 more files, 5.0 GiB in all`.
pub fn removed(dir: &str, files: &[(String, u64)]) -> String {
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let shown = &files[..files.len().min(3)];
    let more = match files.len() - shown.len() {
        0 => String::new(),
        1 => " and 1 more file".into(),
        n => format!(" and {n} more files"),
    };
    format!(
        "removed from {dir} on this machine: {}{more}, {} in all",
        list(shown),
        ByteSize(total).approx()
    )
}

/// A copy home that stopped at the limit: `copying /mlops home stopped at [resources] disk =
/// "300m": /mlops/junk/big (1.2 GiB) and what follows it stayed on the engine`.
pub fn left_behind(from: &str, path: &str, size: u64, limit: u64) -> String {
    format!(
        "copying {from} home stopped at [resources] disk = \"{}\": {from}/{path} ({}) and what \
         follows it stayed on the engine",
        ByteSize(limit),
        ByteSize(size).approx()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(p: &str, n: u64) -> (String, u64) {
        (p.to_string(), n)
    }

    #[test]
    fn named_entries_are_the_biggest_and_never_nested() {
        let biggest = vec![
            e("/workspace/junk/a", 3 << 30),
            e("/workspace/junk", 5 << 30),
            e("/workspace/junk/b", 2 << 30),
            e("/mlops/checkpoints", 10 << 20),
            e("/workspace/junkyard", 1 << 20),
            e("/mlops/empty", 0),
        ];
        assert_eq!(
            to_name(&biggest, 20 << 20),
            vec![
                e("/workspace/junk", 5 << 30),
                e("/mlops/checkpoints", 10 << 20),
                e("/workspace/junkyard", 1 << 20),
            ]
        );
        assert_eq!(
            to_name(&biggest, 5 << 30),
            vec![e("/workspace/junk", 5 << 30)]
        );
    }

    #[test]
    fn the_reason_says_how_much_where_which_setting_and_what_to_delete() {
        let usage = DiskUsage {
            total: 327_155_712,
            roots: vec![e("/workspace", 327_155_000), e("/mlops", 712)],
            biggest: vec![
                e("/workspace/junk", 327_000_000),
                e("/workspace/data.npy", 20_000_000),
                e("/workspace/train.py", 155_000),
            ],
        };
        assert_eq!(
            over_limit(&usage, ByteSize(300 << 20), Some("mlops.toml:9")),
            "it wrote 312 MiB in /workspace, over [resources] disk = \"300m\" (mlops.toml:9): \
             killed at once; delete or shrink /workspace/junk (311.9 MiB), /workspace/data.npy \
             (19.1 MiB), or raise [resources] disk"
        );
        let both = DiskUsage {
            total: 3 << 30,
            roots: vec![e("/mlops", 1 << 30), e("/workspace", 2 << 30)],
            biggest: vec![],
        };
        assert_eq!(
            over_limit(&both, ByteSize(1 << 30), None),
            "it wrote 3 GiB in /workspace (2 GiB) and /mlops (1 GiB), over [resources] disk = \
             \"1g\" (the default): killed at once; delete or shrink what the script writes, or \
             raise [resources] disk"
        );
    }

    #[test]
    fn a_copy_that_stopped_says_what_stayed_behind() {
        assert_eq!(
            left_behind("/mlops", "junk/big", 3 << 29, 300 << 20),
            "copying /mlops home stopped at [resources] disk = \"300m\": /mlops/junk/big \
             (1.5 GiB) and what follows it stayed on the engine"
        );
    }

    #[test]
    fn the_removal_names_the_first_files_and_counts_the_rest() {
        let files: Vec<_> = (1..=5)
            .map(|i| e(&format!("workspace/junk/f{i}"), 100 << 20))
            .collect();
        assert_eq!(
            removed("runs/1/iter-1", &files),
            "removed from runs/1/iter-1 on this machine: workspace/junk/f1 (100 MiB), \
             workspace/junk/f2 (100 MiB), workspace/junk/f3 (100 MiB) and 2 more files, \
             500 MiB in all"
        );
        assert_eq!(
            removed("d", &files[..1]),
            "removed from d on this machine: workspace/junk/f1 (100 MiB), 100 MiB in all"
        );
    }
}
