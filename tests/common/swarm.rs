//! The test swarm of tests/swarm/up.sh, as the swarm tests find it.

use std::collections::HashMap;
use std::path::PathBuf;

/// What tests/swarm/up.sh wrote (`MLOPS_TEST_SWARM`, default /tmp/mlops-swarm); panics with the fix
/// when the swarm is not up or its manager does not answer.
pub fn env() -> HashMap<String, String> {
    let root = std::env::var("MLOPS_TEST_SWARM").unwrap_or_else(|_| "/tmp/mlops-swarm".into());
    let path = PathBuf::from(&root).join("swarm.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the test swarm is not up ({}: {e}): run `bash tests/swarm/up.sh` as root (MLOPS_TEST_SWARM={root})",
            path.display()
        )
    });
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let sock = env["MLOPS_SWARM_MANAGER"].trim_start_matches("unix://");
    assert!(
        std::os::unix::net::UnixStream::connect(sock).is_ok(),
        "the test swarm's manager does not answer at {sock}: run `bash tests/swarm/up.sh` as root"
    );
    env
}

/// Node id → the name up.sh labelled the node with (`mlops-test.node`: s1, s2, s3).
pub async fn node_names(docker: &bollard::Docker) -> HashMap<String, String> {
    docker
        .list_nodes(None)
        .await
        .unwrap()
        .into_iter()
        .map(|n| {
            let name = n
                .spec
                .and_then(|s| s.labels)
                .and_then(|l| l.get("mlops-test.node").cloned())
                .unwrap_or_default();
            (n.id.unwrap_or_default(), name)
        })
        .collect()
}
