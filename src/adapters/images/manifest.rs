//! What `python3` can import in each built-in image: top-level module names, the Python standard
//! library excluded (every image has it).
//!
//! Detection checks a project's imports against these lists before any container starts, so a list
//! must never claim a module the image lacks: `tests/image_manifest_real.rs` imports every name listed
//! here inside its image. Names come from the Debian packages and pinned wheels each
//! `dockerfiles/<profile>/Dockerfile` installs, with their dependencies.

/// The Debian packages every profile shares: NumPy, SciPy, scikit-learn (for its bundled data sets),
/// pandas and matplotlib, with the modules they depend on.
const DEBIAN_COMMON: &[&str] = &[
    "contourpy",
    "cycler",
    "dateutil",
    "fontTools",
    "joblib",
    "kiwisolver",
    "matplotlib",
    "mpl_toolkits",
    "numpy",
    "packaging",
    "pandas",
    "PIL",
    "pylab",
    "pyparsing",
    "pytz",
    "scipy",
    "six",
    "sklearn",
    "threadpoolctl",
];

pub const NUMPY: &[&str] = DEBIAN_COMMON;

pub const SKLEARN: &[&str] = DEBIAN_COMMON;

pub const TORCH: &[&str] = &[
    "contourpy",
    "cycler",
    "dateutil",
    "fontTools",
    "joblib",
    "kiwisolver",
    "matplotlib",
    "mpl_toolkits",
    "numpy",
    "packaging",
    "pandas",
    "PIL",
    "pylab",
    "pyparsing",
    "pytz",
    "scipy",
    "six",
    "sklearn",
    "threadpoolctl",
    "torch",
    "typing_extensions",
];

pub const KERAS: &[&str] = &[
    "absl",
    "contourpy",
    "cycler",
    "dateutil",
    "fontTools",
    "h5py",
    "jax",
    "jaxlib",
    "joblib",
    "keras",
    "kiwisolver",
    "markdown_it",
    "matplotlib",
    "mdurl",
    "ml_dtypes",
    "mpl_toolkits",
    "namex",
    "numpy",
    "opt_einsum",
    "optree",
    "packaging",
    "pandas",
    "PIL",
    "pygments",
    "pylab",
    "pyparsing",
    "pytz",
    "rich",
    "scipy",
    "six",
    "sklearn",
    "threadpoolctl",
    "typing_extensions",
];
