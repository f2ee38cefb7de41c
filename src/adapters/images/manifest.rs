//! What `python3` can import in each built-in image: top-level module names, the Python standard
//! library excluded (every image has it).
//!
//! Detection checks a project's imports against these lists before any container starts, so a list
//! must never claim a module the image lacks: `tests/images_real.rs` imports every name listed here
//! inside its image. Names come from the Debian packages and pinned wheels each
//! `dockerfiles/<profile>/Dockerfile` installs, with their dependencies (tools such as `pip` left out).

/// The Debian packages every profile shares (NumPy, SciPy, scikit-learn, pandas, matplotlib, and
/// nbclient with an IPython kernel for notebooks) and the modules they depend on.
const DEBIAN_COMMON: &[&str] = &[
    "appdirs",
    "attr",
    "attrs",
    "beniget",
    "brotli",
    "contourpy",
    "cycler",
    "dateutil",
    "decorator",
    "fontTools",
    "fs",
    "gast",
    "ipykernel",
    "IPython",
    "joblib",
    "jupyter_client",
    "kiwisolver",
    "lxml",
    "lz4",
    "matplotlib",
    "matplotlib_inline",
    "mpl_toolkits",
    "mpmath",
    "nbclient",
    "nbformat",
    "numpy",
    "packaging",
    "pandas",
    "PIL",
    "pkg_resources",
    "ply",
    "pylab",
    "pyparsing",
    "pythran",
    "pytz",
    "scipy",
    "six",
    "sklearn",
    "sympy",
    "threadpoolctl",
    "ufoLib2",
];

pub const NUMPY: &[&str] = DEBIAN_COMMON;

pub const SKLEARN: &[&str] = DEBIAN_COMMON;

/// [`DEBIAN_COMMON`] and Debian's PyTorch 1.13 with its dependencies.
pub const TORCH: &[&str] = &[
    "appdirs",
    "astunparse",
    "attr",
    "attrs",
    "beniget",
    "brotli",
    "certifi",
    "chardet",
    "charset_normalizer",
    "contourpy",
    "cycler",
    "dateutil",
    "decorator",
    "fontTools",
    "fs",
    "functorch",
    "future",
    "gast",
    "hypothesis",
    "idna",
    "ipykernel",
    "IPython",
    "joblib",
    "jupyter_client",
    "kiwisolver",
    "lxml",
    "lz4",
    "matplotlib",
    "matplotlib_inline",
    "mpl_toolkits",
    "mpmath",
    "nbclient",
    "nbformat",
    "numpy",
    "packaging",
    "pandas",
    "past",
    "PIL",
    "pkg_resources",
    "ply",
    "psutil",
    "pylab",
    "pyparsing",
    "pythran",
    "pytz",
    "requests",
    "scipy",
    "six",
    "sklearn",
    "sortedcontainers",
    "sympy",
    "threadpoolctl",
    "torch",
    "typing_extensions",
    "ufoLib2",
    "urllib3",
    "yaml",
];

/// [`DEBIAN_COMMON`] and Keras 3 on JAX, from the Python package registry.
pub const KERAS: &[&str] = &[
    "absl",
    "appdirs",
    "attr",
    "attrs",
    "beniget",
    "brotli",
    "contourpy",
    "cycler",
    "dateutil",
    "decorator",
    "fontTools",
    "fs",
    "gast",
    "h5py",
    "ipykernel",
    "IPython",
    "jax",
    "jaxlib",
    "joblib",
    "jupyter_client",
    "keras",
    "kiwisolver",
    "lxml",
    "lz4",
    "markdown_it",
    "matplotlib",
    "matplotlib_inline",
    "mdurl",
    "ml_dtypes",
    "mpl_toolkits",
    "mpmath",
    "namex",
    "nbclient",
    "nbformat",
    "numpy",
    "opt_einsum",
    "optree",
    "packaging",
    "pandas",
    "PIL",
    "pkg_resources",
    "ply",
    "pygments",
    "pylab",
    "pyparsing",
    "pythran",
    "pytz",
    "rich",
    "scipy",
    "six",
    "sklearn",
    "sympy",
    "threadpoolctl",
    "typing_extensions",
    "ufoLib2",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every list is sorted (case-insensitively), without duplicates and without the standard library.
    #[test]
    fn lists_are_sorted_third_party_names() {
        for list in [NUMPY, SKLEARN, TORCH, KERAS] {
            for pair in list.windows(2) {
                assert!(
                    pair[0].to_lowercase() < pair[1].to_lowercase(),
                    "{} before {}",
                    pair[0],
                    pair[1]
                );
            }
            for name in list {
                assert!(
                    !crate::core::detect::is_stdlib(name),
                    "{name} is in the standard library"
                );
            }
        }
    }
}
