//! The test engines of `tests/engines/up.sh`: two dockerd in network namespaces, over TCP with TLS.
//! Tests that need them read `/tmp/mlops-engines/engines.env` (or `$MLOPS_TEST_ENGINES/engines.env`)
//! and fail loudly when they are not up, never pass silently.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use mlops_tui::core::config::EngineSpec;

/// What `up.sh` wrote: `MLOPS_TEST_ENGINE_E1=tcp://…`, `…_E1_SOCK`, `…_E1_PID`, `…_TLS`.
pub fn env() -> Option<HashMap<String, String>> {
    let root = std::env::var("MLOPS_TEST_ENGINES").unwrap_or_else(|_| "/tmp/mlops-engines".into());
    let text = std::fs::read_to_string(PathBuf::from(root).join("engines.env")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// The two test engines (`e1`, `e2`, one slot each), or `None` when they are not up.
pub fn test_engines() -> Option<Vec<EngineSpec>> {
    let env = env()?;
    let tls = env.get("MLOPS_TEST_ENGINE_TLS")?;
    ["E1", "E2"]
        .iter()
        .map(|e| {
            let url = env.get(&format!("MLOPS_TEST_ENGINE_{e}"))?;
            let sock = env.get(&format!("MLOPS_TEST_ENGINE_{e}_SOCK"))?;
            if !std::path::Path::new(sock).exists() {
                return None;
            }
            EngineSpec::parse_flag(&format!("{}={url},tls={tls}", e.to_lowercase())).ok()
        })
        .collect()
}

/// The test engines; panics with the fix when they are not up.
pub fn require() -> Vec<EngineSpec> {
    test_engines().unwrap_or_else(|| {
        panic!(
            "test engines not up: run bash tests/engines/up.sh (as root; see tests/engines/up.sh)"
        )
    })
}

/// A value of `engines.env` (e.g. `MLOPS_TEST_ENGINE_E1_SOCK`).
pub fn var(key: &str) -> String {
    env()
        .and_then(|e| e.get(key).cloned())
        .unwrap_or_else(|| panic!("{key} missing from engines.env: run bash tests/engines/up.sh"))
}
