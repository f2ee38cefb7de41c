//! Where mlops-tui keeps things: XDG directories, each overridable so tests and several consoles can run
//! side by side.

use std::path::PathBuf;

use directories::ProjectDirs;

/// Resolved locations. Invariant: all absolute.
#[derive(Debug, Clone)]
pub struct Paths {
    /// History database and per-run directories (`MLOPS_TUI_DATA_DIR`).
    pub data: PathBuf,
    /// Log files (`MLOPS_TUI_STATE_DIR`).
    pub state: PathBuf,
    /// User configuration (`MLOPS_TUI_CONFIG_DIR`).
    pub config: PathBuf,
}

impl Paths {
    pub fn resolve(data_override: Option<PathBuf>) -> Paths {
        let dirs = ProjectDirs::from("", "", "mlops-tui");
        let home_fallback = |sub: &str| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(sub)
                .join("mlops-tui")
        };
        let from_env = |var: &str| std::env::var_os(var).map(PathBuf::from);
        let data = data_override
            .or_else(|| from_env("MLOPS_TUI_DATA_DIR"))
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| home_fallback(".local/share"));
        let state = from_env("MLOPS_TUI_STATE_DIR")
            .or_else(|| {
                dirs.as_ref()
                    .and_then(|d| d.state_dir().map(|p| p.to_path_buf()))
            })
            .unwrap_or_else(|| home_fallback(".local/state"));
        let config = from_env("MLOPS_TUI_CONFIG_DIR")
            .or_else(|| dirs.as_ref().map(|d| d.config_dir().to_path_buf()))
            .unwrap_or_else(|| home_fallback(".config"));
        Paths {
            data: absolute(data),
            state: absolute(state),
            config: absolute(config),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.data.join("history.sqlite3")
    }

    pub fn runs(&self) -> PathBuf {
        self.data.join("runs")
    }

    pub fn log_file(&self) -> PathBuf {
        self.state.join("mlops-tui.log")
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
    }
}
