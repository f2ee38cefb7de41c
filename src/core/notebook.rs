//! Jupyter notebooks as Python text, and back.
//!
//! Pure. A notebook's code is its code cells' sources; mlops-tui reads and edits it as one Python
//! text in the percent format (a `# %% In[n]` line before the n-th code cell, then its source), so
//! detection, imports and source knobs work on a notebook exactly as on a `.py` file: the marker
//! lines are comments, which the lexer never matches. Line numbers of a notebook are lines of that
//! text. An edited text is written back into the cells it came from, every other part of the
//! notebook (outputs, metadata, markdown cells, key order) kept; the JSON is written in nbformat's
//! layout (one-space indentation, a final newline) when the original used it.
//!
//! Invariant: [`code_text`] then [`patch_cells`] with the same text gives back the notebook's value
//! unchanged.

use serde_json::Value;

/// Whether `path` names a notebook.
pub fn is_notebook(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".ipynb")
}

/// The marker line before the n-th code cell (1-based).
fn marker(n: usize) -> String {
    format!("# %% In[{n}]")
}

/// A cell's `source`: a string, or a list of lines that each keep their `\n`.
fn source_of(cell: &Value) -> String {
    match cell.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn is_code(cell: &Value) -> bool {
    cell.get("cell_type").and_then(Value::as_str) == Some("code")
}

/// Why a text is not a notebook, for people: `digits.ipynb: not a notebook (…)`.
fn parse(json: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not a notebook ({e})"))?;
    match v.get("cells") {
        Some(Value::Array(_)) => Ok(v),
        _ => Err("not a notebook (no \"cells\" list)".into()),
    }
}

/// The code cells' sources, 1-based by code-cell order.
pub fn code_cells(json: &str) -> Result<Vec<String>, String> {
    let v = parse(json)?;
    let cells = v
        .get("cells")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(cells.iter().filter(|c| is_code(c)).map(source_of).collect())
}

/// The notebook's code as one Python text (see the module).
pub fn code_text(json: &str) -> Result<String, String> {
    let mut out = String::new();
    for (i, src) in code_cells(json)?.iter().enumerate() {
        out.push_str(&marker(i + 1));
        out.push('\n');
        out.push_str(src);
        if !src.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The cell (1-based among code cells) and the line within it of line `line` of [`code_text`];
/// `None` on a marker line or past the end.
pub fn cell_line(text: &str, line: usize) -> Option<(usize, usize)> {
    let (mut cell, mut within) = (0, 0);
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("# %% In[") {
            cell += 1;
            within = 0;
            if i + 1 == line {
                return None;
            }
            continue;
        }
        within += 1;
        if i + 1 == line {
            return (cell > 0).then_some((cell, within));
        }
    }
    None
}

/// `file:line` for people; in a notebook (`code` being its [`code_text`]) the cell and the line
/// within it, as Jupyter shows them: `digits.ipynb In[3]:6`.
pub fn location(file: &str, code: &str, line: usize) -> String {
    match is_notebook(file).then(|| cell_line(code, line)).flatten() {
        Some((cell, within)) => format!("{file} In[{cell}]:{within}"),
        None => format!("{file}:{line}"),
    }
}

/// The notebook `json` with its code cells' sources replaced by the cells of `text` (an edited
/// [`code_text`]). Fails when the edit added or removed a marker line.
pub fn patch_cells(json: &str, text: &str) -> Result<String, String> {
    let mut v = parse(json)?;
    let old = code_text(json)?;
    let new_cells = split(text)?;
    let old_cells = split(&old)?;
    if new_cells.len() != old_cells.len() {
        return Err(format!(
            "an edit changed the notebook's {} code cells into {}: a repeated block must stay inside its cell",
            old_cells.len(),
            new_cells.len()
        ));
    }
    let cells = v
        .get_mut("cells")
        .and_then(Value::as_array_mut)
        .ok_or("no cells")?;
    for (n, cell) in cells.iter_mut().filter(|c| is_code(c)).enumerate() {
        let (before, after) = (&old_cells[n], &new_cells[n]);
        if before == after {
            continue;
        }
        // The text gave every cell a final newline; a cell without one keeps it that way.
        let original = source_of(cell);
        let mut src = after.clone();
        if !original.ends_with('\n') && src.ends_with('\n') {
            src.pop();
        }
        let value = match cell.get("source") {
            Some(Value::String(_)) => Value::String(src),
            _ => Value::Array(lines_keeping_newlines(&src)),
        };
        if let Some(obj) = cell.as_object_mut() {
            obj.insert("source".into(), value);
        }
    }
    Ok(render(&v, json))
}

/// The cells of a code text, without their marker lines; each ends with `\n`.
fn split(text: &str) -> Result<Vec<String>, String> {
    let mut cells: Vec<String> = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with("# %% In[") {
            let n = cells.len() + 1;
            if line.trim_end() != marker(n) {
                return Err(format!(
                    "line {}: cell marker out of order: {}",
                    i + 1,
                    line.trim_end()
                ));
            }
            cells.push(String::new());
        } else if let Some(c) = cells.last_mut() {
            c.push_str(line);
        } else if !line.trim().is_empty() {
            return Err("code before the first cell marker".into());
        }
    }
    Ok(cells)
}

fn lines_keeping_newlines(src: &str) -> Vec<Value> {
    src.split_inclusive('\n')
        .map(|l| Value::String(l.to_string()))
        .collect()
}

/// `v` as JSON in the original's layout: its indentation (nbformat writes one space) and final
/// newline. Keys keep the order serde_json gives them (sorted, as nbformat writes them).
fn render(v: &Value, original: &str) -> String {
    let indent: usize = original
        .lines()
        .nth(1)
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let spaces = vec![b' '; indent];
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(&spaces);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    let mut s = String::from_utf8(out).unwrap_or_default();
    if original.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: &str = "{\n \"cells\": [\n  {\n   \"cell_type\": \"markdown\",\n   \"metadata\": {},\n   \"source\": [\n    \"# Digits\"\n   ]\n  },\n  {\n   \"cell_type\": \"code\",\n   \"execution_count\": 1,\n   \"metadata\": {},\n   \"outputs\": [\n    {\n     \"name\": \"stdout\",\n     \"output_type\": \"stream\",\n     \"text\": [\n      \"hi\\n\"\n     ]\n    }\n   ],\n   \"source\": [\n    \"import numpy as np\\n\",\n    \"x = 1\"\n   ]\n  },\n  {\n   \"cell_type\": \"code\",\n   \"execution_count\": null,\n   \"metadata\": {},\n   \"outputs\": [],\n   \"source\": \"clf = SVC(gamma=0.1)\\nclf.fit(X, y)\\n\"\n  }\n ],\n \"metadata\": {\n  \"kernelspec\": {\n   \"name\": \"python3\"\n  }\n },\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n";

    #[test]
    fn code_cells_become_one_percent_format_text() {
        let text = code_text(NB).unwrap();
        assert_eq!(
            text,
            "# %% In[1]\nimport numpy as np\nx = 1\n# %% In[2]\nclf = SVC(gamma=0.1)\nclf.fit(X, y)\n"
        );
        assert_eq!(cell_line(&text, 5), Some((2, 1)));
        assert_eq!(cell_line(&text, 3), Some((1, 2)));
        assert_eq!(cell_line(&text, 4), None);
        assert_eq!(location("nb.ipynb", &text, 5), "nb.ipynb In[2]:1");
        assert_eq!(location("train.py", &text, 5), "train.py:5");
    }

    #[test]
    fn an_edit_goes_back_into_its_cell_and_nothing_else_changes() {
        let same = patch_cells(NB, &code_text(NB).unwrap()).unwrap();
        assert_eq!(
            same, NB,
            "a notebook in nbformat's layout comes back byte for byte"
        );
        let text = code_text(NB).unwrap().replace("gamma=0.1", "gamma=0.001");
        let out = patch_cells(NB, &text).unwrap();
        assert_eq!(out, NB.replace("gamma=0.1", "gamma=0.001"));
        let edited = code_text(NB).unwrap().replace("x = 1\n", "x = 2\nx = 3\n");
        let v: Value = serde_json::from_str(&patch_cells(NB, &edited).unwrap()).unwrap();
        assert_eq!(
            v["cells"][1]["source"],
            serde_json::json!(["import numpy as np\n", "x = 2\n", "x = 3"])
        );
        assert_eq!(
            v["cells"][1]["outputs"][0]["text"],
            serde_json::json!(["hi\n"])
        );
        assert_eq!(v["cells"][0]["source"], serde_json::json!(["# Digits"]));
    }

    #[test]
    fn an_edit_across_cells_and_garbage_are_refused() {
        let doubled = code_text(NB)
            .unwrap()
            .replace("# %% In[2]\n", "# %% In[2]\n# %% In[2]\n");
        assert!(
            patch_cells(NB, &doubled)
                .unwrap_err()
                .contains("cell marker out of order")
        );
        assert!(
            code_text("{\"a\": 1}")
                .unwrap_err()
                .contains("no \"cells\"")
        );
        assert!(code_text("nope").unwrap_err().starts_with("not a notebook"));
        assert!(is_notebook("Digits.IPYNB") && !is_notebook("train.py"));
    }
}
