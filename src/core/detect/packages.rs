//! pip's names: the package that installs an imported module, and the packages a
//! `requirements.txt` lists.

/// The name to `pip install` for an import name, where the two differ.
pub fn package_name(module: &str) -> &str {
    match module {
        "sklearn" => "scikit-learn",
        "cv2" => "opencv-python-headless",
        "PIL" => "pillow",
        "yaml" => "pyyaml",
        "bs4" => "beautifulsoup4",
        "skimage" => "scikit-image",
        "dateutil" => "python-dateutil",
        "dotenv" => "python-dotenv",
        "attr" => "attrs",
        "Crypto" => "pycryptodome",
        "OpenSSL" => "pyopenssl",
        "jwt" => "pyjwt",
        "serial" => "pyserial",
        "usb" => "pyusb",
        "magic" => "python-magic",
        "docx" => "python-docx",
        "pptx" => "python-pptx",
        "git" => "gitpython",
        "tensorflow_datasets" => "tensorflow-datasets",
        _ => module,
    }
}

/// A distribution name as pip compares them: lower case, `_` and `.` as `-`.
fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The distribution names a `requirements.txt` lists: each line's name before any extras, version,
/// marker or comment. Options (`-r`, `--index-url`, `-e`) and URLs name nothing and are skipped.
pub fn requirement_names(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-') && !l.contains("://"))
        .filter_map(|l| {
            let end = l
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(l.len());
            let name = &l[..end];
            (!name.is_empty()).then(|| normalize(name))
        })
        .collect()
}

/// True when `requirements` (normalized names from [`requirement_names`]) install `module`.
pub fn required(module: &str, requirements: &[String]) -> bool {
    let by_module = normalize(module);
    let by_package = normalize(package_name(module));
    requirements
        .iter()
        .any(|r| *r == by_module || *r == by_package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_names_and_matching() {
        let text = "\
# tools
tabulate==0.9.0
scikit-learn>=1.0  # already there
PyYAML[extra]; python_version >= '3.8'
-r other.txt
--index-url https://example.org/simple
git+https://github.com/x/y.git#egg=y
opencv_python_headless
";
        let names = requirement_names(text);
        assert_eq!(
            names,
            vec![
                "tabulate",
                "scikit-learn",
                "pyyaml",
                "opencv-python-headless"
            ]
        );
        assert!(required("tabulate", &names));
        assert!(required("sklearn", &names));
        assert!(required("yaml", &names));
        assert!(required("cv2", &names));
        assert!(!required("seaborn", &names));
    }

    #[test]
    fn package_names_differ_where_pip_names_differ() {
        assert_eq!(package_name("sklearn"), "scikit-learn");
        assert_eq!(package_name("PIL"), "pillow");
        assert_eq!(package_name("yaml"), "pyyaml");
        assert_eq!(package_name("cv2"), "opencv-python-headless");
        assert_eq!(package_name("tabulate"), "tabulate");
    }
}
