use super::*;

fn listed(files: &[(&str, &str)]) -> Vec<(String, usize, String, bool)> {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), (*s).to_owned()))
        .collect();
    third_party(&files)
        .into_iter()
        .map(|i| (i.file.display().to_string(), i.line, i.module, i.optional))
        .collect()
}

fn modules(src: &str) -> Vec<String> {
    listed(&[("train.py", src)])
        .into_iter()
        .map(|(_, _, m, _)| m)
        .collect()
}

#[test]
fn notebook_export_with_aliases_and_from_imports() {
    let src = "\
#!/usr/bin/env python
# coding: utf-8

# In[1]:


import numpy as np, pandas as pd
import os, sys


# In[3]:


from sklearn.svm import SVC
from sklearn import metrics
import matplotlib.pyplot as plt
";
    assert_eq!(
        listed(&[("model_code3.py", src)]),
        vec![
            ("model_code3.py".into(), 7, "numpy".into(), false),
            ("model_code3.py".into(), 7, "pandas".into(), false),
            ("model_code3.py".into(), 14, "sklearn".into(), false),
            ("model_code3.py".into(), 16, "matplotlib".into(), false),
        ]
    );
}

#[test]
fn relative_stdlib_and_local_modules_are_not_third_party() {
    let files = [
        (
            "train.py",
            "from . import x\nfrom .models import Net\nimport json, pickle, __future__\nfrom collections import Counter\nimport utils\nfrom helpers.data import load\nimport seaborn as sns\n",
        ),
        ("utils.py", "import csv\n"),
        (
            "helpers/data.py",
            "from ..utils import f\nimport requests\n",
        ),
    ];
    assert_eq!(
        listed(&files),
        vec![
            ("train.py".into(), 7, "seaborn".into(), false),
            ("helpers/data.py".into(), 2, "requests".into(), false),
        ]
    );
}

#[test]
fn imports_inside_functions_and_parenthesized_lists_count() {
    let src = "\
def plot(history):
    import matplotlib.pyplot as plt
    from tabulate import (
        tabulate,
    )
    return plt

class Model:
    def fit(self):
        import xgboost
";
    assert_eq!(modules(src), vec!["matplotlib", "tabulate", "xgboost"]);
}

#[test]
fn guarded_imports_are_optional_only_when_import_errors_are_caught() {
    let src = "\
try:
    import ujson as json
except ImportError:
    import json
try:
    import seaborn
except ValueError:
    pass
try:
    import tqdm
except:
    tqdm = None
try: import rich
except (ModuleNotFoundError, OSError): pass
try:
    import yaml
finally:
    pass
import cv2
";
    let found = listed(&[("train.py", src)]);
    let optional: Vec<(&str, bool)> = found.iter().map(|(_, _, m, o)| (m.as_str(), *o)).collect();
    assert_eq!(
        optional,
        vec![
            ("ujson", true),
            ("seaborn", false),
            ("tqdm", true),
            ("rich", true),
            ("yaml", false),
            ("cv2", false),
        ]
    );
}

#[test]
fn nested_try_blocks_follow_indentation() {
    let src = "\
try:
    import a
    try:
        import b
    except ValueError:
        import c
    import d
except ImportError:
    pass
try:
    import f
    try:
        import g
    except ImportError:
        import h
except ValueError:
    pass
import e
";
    let found = listed(&[("train.py", src)]);
    let optional: Vec<(&str, bool)> = found.iter().map(|(_, _, m, o)| (m.as_str(), *o)).collect();
    assert_eq!(
        optional,
        vec![
            ("a", true),
            ("b", true),
            // In the outer block's body, whose `except` catches it.
            ("c", true),
            ("d", true),
            ("f", false),
            ("g", true),
            ("h", false),
            ("e", false),
        ]
    );
}

#[test]
fn a_later_unguarded_import_makes_a_module_required() {
    let src = "try:\n    import tqdm\nexcept ImportError:\n    pass\nimport tqdm\n";
    assert_eq!(
        listed(&[("train.py", src)]),
        vec![("train.py".into(), 2, "tqdm".into(), false)]
    );
}

#[test]
fn strings_and_comments_are_not_imports() {
    let src = "# import seaborn\ns = \"import plotly\"\n'''\nimport bokeh\n'''\nimport numpy\n";
    assert_eq!(modules(src), vec!["numpy"]);
}

#[test]
fn missing_module_error_names_file_line_and_fix() {
    let imports = vec![
        Import {
            file: PathBuf::from("train.py"),
            line: 4,
            module: "seaborn".into(),
            optional: false,
            cell: None,
        },
        Import {
            file: PathBuf::from("src/prep.py"),
            line: 2,
            module: "cv2".into(),
            optional: false,
            cell: None,
        },
        Import {
            file: PathBuf::from("train.py"),
            line: 9,
            module: "ujson".into(),
            optional: true,
            cell: None,
        },
        Import {
            file: PathBuf::from("train.py"),
            line: 1,
            module: "numpy".into(),
            optional: false,
            cell: None,
        },
    ];
    let lines: Vec<String> = missing(&imports, "sklearn", |m| m == "numpy")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        vec![
            "train.py:4: imports `seaborn`, which image `sklearn` does not provide: list it in requirements.txt (mlops-tui builds a derived image with it) or set train.image",
            "src/prep.py:2: imports `cv2`, which image `sklearn` does not provide: list `opencv-python-headless` in requirements.txt (mlops-tui builds a derived image with it) or set train.image",
        ]
    );
}

#[test]
fn stdlib_modules() {
    assert!(is_stdlib("os") && is_stdlib("__future__") && !is_stdlib("numpy"));
}
