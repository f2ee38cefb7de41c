//! Where in `mlops.toml` an error is: turns a byte offset into `file:line:column` plus the source line,
//! and finds the offset of a key by its full table path.
//!
//! Keys are looked up in the parsed document (`toml::de::DeTable`, whose keys carry their spans), never
//! by scanning lines, so `timeout` under `[train]` is never mistaken for `timeout` under `[notify]`.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// The error `message` located at byte `offset` of `text` (clamped to the text). Line and column are
/// 1-based; the column counts characters, not bytes.
pub(super) fn invalid_at(text: &str, path: &Path, offset: usize, message: String) -> ConfigError {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let snippet = shorten(line_text, SNIPPET_CHARS);
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
        snippet,
    }
}

/// Longest source line quoted whole in an error: a line holding a huge value is cut, so the error
/// stays readable and small enough to store.
const SNIPPET_CHARS: usize = 200;

/// `line` cut to `max` characters, the cut marked.
fn shorten(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// The largest char boundary at or below `offset`, so slicing never panics on a multi-byte character.
fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Byte offset of the key written last among `key_paths`. A key path is e.g. `["metric",
/// "pattern"]`; an index into an array of tables is written as its number, e.g. `["engines", "1",
/// "name"]`. When a full path is absent (a defaulted value), the deepest table on the path that is
/// present is the best place to point at; with nothing of the path present, or a text that does not
/// parse, the start of the file. The document is parsed once, whatever the number of keys (an error
/// about every dimension of a large space names them all).
pub(super) fn last_key_offset<K: AsRef<[S]>, S: AsRef<str>>(text: &str, key_paths: &[K]) -> usize {
    let Ok(root) = DeTable::parse(text) else {
        return 0;
    };
    key_paths
        .iter()
        .map(|k| offset_in(root.get_ref(), k.as_ref()))
        .max()
        .unwrap_or(0)
}

/// The offset of one key path (see [`last_key_offset`]) in a parsed document.
fn offset_in<S: AsRef<str>>(root: &DeTable<'_>, key_path: &[S]) -> usize {
    let mut table = root;
    let mut offset = 0;
    let mut names = key_path.iter().map(AsRef::as_ref);
    while let Some(name) = names.next() {
        let Some((key, value)) = entry(table, name) else {
            break;
        };
        offset = key.span().start;
        let mut value = value;
        if let DeValue::Array(items) = value.get_ref() {
            let Some(item) = names
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| items.get(i))
            else {
                break;
            };
            offset = item.span().start;
            value = item;
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    offset
}

/// The 1-based line of the key at `key_path` in `text`; `None` when the file does not set it (the
/// default applies) or does not parse. For messages about a setting after the file was read
/// (`[resources] disk = "300m" (mlops.toml:9)`).
pub fn key_line(text: &str, key_path: &[&str]) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let (last, tables) = key_path.split_last()?;
    for name in tables {
        match entry(table, name)?.1.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => return None,
        }
    }
    let (key, _) = entry(table, last)?;
    let offset = key.span().start.min(text.len());
    Some(
        text.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1,
    )
}

/// The key and value named `name` in `table`.
fn entry<'t, 'i>(
    table: &'t DeTable<'i>,
    name: &str,
) -> Option<(
    &'t Spanned<toml::de::DeString<'i>>,
    &'t Spanned<DeValue<'i>>,
)> {
    table.iter().find(|(key, _)| key.get_ref() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_finds_the_key_under_its_table_and_nothing_for_a_default() {
        let text =
            "[train]\ncommand = [\"python\"]\n\n[resources]\nmemory = \"1g\"\ndisk = \"300m\"\n";
        assert_eq!(key_line(text, &["resources", "disk"]), Some(6));
        assert_eq!(key_line(text, &["resources", "cpus"]), None);
        assert_eq!(key_line(text, &["budget", "disk"]), None);
        let dotted = "resources.disk = \"1g\"\n";
        assert_eq!(key_line(dotted, &["resources", "disk"]), Some(1));
        assert_eq!(key_line("not [toml", &["resources", "disk"]), None);
    }
}
