//! Reaching an engine named by an [`EngineSpec`]: the local socket, `tcp://` with TLS client
//! certificates (bollard's `ssl` feature, rustls), or `ssh://` (bollard's `ssh` feature, which runs
//! the system's `ssh` client to reach the engine's socket on the far side).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::{API_DEFAULT_VERSION, Docker};

use super::DockerBackend;
use crate::adapters::backend::BackendError;
use crate::core::config::{EngineHost, EngineSpec, TlsFiles};

/// Seconds an engine call may wait for the response headers (bollard's default).
const TIMEOUT_S: u64 = 120;

impl DockerBackend {
    /// Connects using `DOCKER_HOST` or the local socket. Fails at once when the socket is missing.
    pub fn connect_default() -> Result<Self, BackendError> {
        Self::connect(&EngineSpec::local_default())
    }

    /// A client of the engine `spec` names. Nothing is sent yet (call `ping`); what can be checked
    /// here is: certificate files exist and the CA parses. The backend shares this machine's disk only
    /// for a local engine.
    pub fn connect(spec: &EngineSpec) -> Result<Self, BackendError> {
        let endpoint = match &spec.host {
            EngineHost::Local { socket: None } => std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            other => other.url(),
        };
        let fail = |message: String| BackendError::Unavailable {
            endpoint: endpoint.clone(),
            message,
        };
        let docker = match &spec.host {
            EngineHost::Local { socket: None } => Docker::connect_with_defaults(),
            EngineHost::Local { socket: Some(path) } => {
                Docker::connect_with_unix(&path.to_string_lossy(), TIMEOUT_S, API_DEFAULT_VERSION)
            }
            EngineHost::Tcp { addr, tls: None } => {
                Docker::connect_with_http(addr, TIMEOUT_S, API_DEFAULT_VERSION)
            }
            EngineHost::Tcp {
                addr,
                tls: Some(tls),
            } => {
                let files = tls_files(tls).map_err(fail)?;
                Docker::connect_with_ssl(
                    addr,
                    &files.key,
                    &files.cert,
                    &files.ca,
                    TIMEOUT_S,
                    API_DEFAULT_VERSION,
                )
            }
            EngineHost::Ssh { dest } => Docker::connect_with_ssh(
                &format!("ssh://{dest}"),
                TIMEOUT_S,
                API_DEFAULT_VERSION,
                None,
            ),
        }
        .map_err(|e| fail(e.to_string()))?;
        Ok(DockerBackend {
            docker,
            endpoint,
            name: spec.name.clone(),
            remote: !spec.is_local(),
            image_source: None,
            copy_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// This engine takes the images it lacks from `source` (export there, import here, streamed), so
    /// nothing is ever pulled and each image is built once, on the source.
    pub fn with_image_source(mut self, source: Arc<DockerBackend>) -> Self {
        self.image_source = Some(source);
        self
    }

    /// The engine's name in the configuration (`local` by default).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The certificate files with `~/` expanded, each checked to exist, so a wrong path is reported as
/// such instead of as a failed TLS handshake later.
fn tls_files(tls: &TlsFiles) -> Result<TlsFiles, String> {
    let files = TlsFiles {
        ca: expand_home(&tls.ca),
        cert: expand_home(&tls.cert),
        key: expand_home(&tls.key),
    };
    for (what, path) in [
        ("CA", &files.ca),
        ("client certificate", &files.cert),
        ("client key", &files.key),
    ] {
        if !path.is_file() {
            return Err(format!(
                "the TLS {what} {} does not exist; the `tls` directory needs ca.pem, cert.pem and key.pem (Docker's DOCKER_CERT_PATH layout)",
                path.display()
            ));
        }
    }
    Ok(files)
}

/// `~/x` under the operator's home; other paths as they are.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn missing_certificates_are_named() {
        let spec = EngineSpec::parse_flag("e=tcp://127.0.0.1:1,tls=/nonexistent/certs").unwrap();
        let err = DockerBackend::connect(&spec).err().unwrap().to_string();
        assert!(err.contains("tcp://127.0.0.1:1"), "{err}");
        assert!(
            err.contains("/nonexistent/certs/ca.pem does not exist"),
            "{err}"
        );
    }

    #[test]
    fn remote_engines_do_not_share_the_disk() {
        use crate::adapters::backend::ContainerBackend;
        let ssh =
            DockerBackend::connect(&EngineSpec::parse_flag("far=ssh://me@far").unwrap()).unwrap();
        assert!(!ssh.shares_disk());
        assert_eq!(ssh.endpoint(), "ssh://me@far");
        // bollard checks that a unix socket exists; nothing is sent to it here.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let flag = format!("here=unix://{}", sock.display());
        let local = DockerBackend::connect(&EngineSpec::parse_flag(&flag).unwrap()).unwrap();
        assert!(local.shares_disk());
        assert_eq!(local.endpoint(), format!("unix://{}", sock.display()));
        assert_eq!(expand_home(Path::new("/a/b")), PathBuf::from("/a/b"));
    }
}
