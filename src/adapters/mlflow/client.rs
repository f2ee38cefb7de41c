//! MLflow's REST API (`/api/2.0/mlflow/...`) and its proxied artifact API
//! (`/api/2.0/mlflow-artifacts/artifacts/...`, a server started with `--serve-artifacts`).

use std::time::Duration;

use serde_json::{Value, json};

use super::plan::{Metric, RunAck};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The server cannot be reached, timed out or answered 5xx/429: worth retrying later.
    #[error("MLflow at {uri} unreachable: {detail}")]
    Unreachable { uri: String, detail: String },
    /// The server refused the request: retrying it would not help.
    #[error("MLflow at {uri} refused {what}: {detail}")]
    Refused {
        uri: String,
        what: String,
        detail: String,
    },
}

impl MlflowError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, MlflowError::Unreachable { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server at `uri` (`http://host:port`, no trailing slash).
    pub fn new(uri: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Client {
            http,
            base: uri.trim_end_matches('/').to_string(),
        }
    }

    pub fn uri(&self) -> &str {
        &self.base
    }

    /// The id of experiment `name`, created when there is none.
    pub async fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", self.base);
        let req = self.http.get(url).query(&[("experiment_name", name)]);
        match self.send(req, "experiments/get-by-name").await {
            Ok(v) => return Ok(str_at(&v, "/experiment/experiment_id")),
            Err(MlflowError::Refused { detail, .. })
                if detail.contains("RESOURCE_DOES_NOT_EXIST") => {}
            Err(e) => return Err(e),
        }
        let v = self
            .post("experiments/create", json!({ "name": name }))
            .await;
        match v {
            Ok(v) => Ok(str_at(&v, "/experiment_id")),
            // Created meanwhile by someone else.
            Err(MlflowError::Refused { detail, .. })
                if detail.contains("RESOURCE_ALREADY_EXISTS") =>
            {
                let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", self.base);
                let req = self.http.get(url).query(&[("experiment_name", name)]);
                let v = self.send(req, "experiments/get-by-name").await?;
                Ok(str_at(&v, "/experiment/experiment_id"))
            }
            Err(e) => Err(e),
        }
    }

    /// The run of `experiment` tagged `mlops.key = key`, if there is one.
    pub async fn find_run(
        &self,
        experiment: &str,
        key: &str,
    ) -> Result<Option<RunAck>, MlflowError> {
        let filter = format!("tags.`mlops.key` = '{key}'");
        let body = json!({
            "experiment_ids": [experiment],
            "filter": filter,
            "max_results": 1,
        });
        let v = self.post("runs/search", body).await?;
        Ok(v.pointer("/runs/0/info").map(run_ack))
    }

    pub async fn create_run(
        &self,
        experiment: &str,
        name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<RunAck, MlflowError> {
        let body = json!({
            "experiment_id": experiment,
            "run_name": name,
            "start_time": start_time,
            "tags": pairs(tags),
        });
        let v = self.post("runs/create", body).await?;
        Ok(run_ack(v.pointer("/run/info").unwrap_or(&Value::Null)))
    }

    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), MlflowError> {
        let body = json!({
            "run_id": run_id,
            "metrics": metrics,
            "params": pairs(params),
            "tags": pairs(tags),
        });
        self.post("runs/log-batch", body).await.map(|_| ())
    }

    pub async fn end_run(
        &self,
        run_id: &str,
        status: &str,
        end_time: i64,
    ) -> Result<(), MlflowError> {
        let body = json!({ "run_id": run_id, "status": status, "end_time": end_time });
        self.post("runs/update", body).await.map(|_| ())
    }

    /// Uploads `bytes` as the artifact `name` of the run whose artifacts live at `artifact_uri`.
    pub async fn upload(
        &self,
        artifact_uri: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MlflowError> {
        let Some(root) = proxied_path(artifact_uri) else {
            return Err(MlflowError::Refused {
                uri: self.base.clone(),
                what: format!("artifact {name}"),
                detail: format!(
                    "the run's artifacts go to {artifact_uri}, not through the server (start it with --serve-artifacts)"
                ),
            });
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{name}",
            self.base
        );
        let req = self.http.put(url).body(bytes);
        self.send(req, &format!("artifact {name}"))
            .await
            .map(|_| ())
    }

    async fn post(&self, endpoint: &str, body: Value) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.send(self.http.post(url).json(&body), endpoint).await
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, MlflowError> {
        let unreachable = |detail: String| MlflowError::Unreachable {
            uri: self.base.clone(),
            detail,
        };
        let resp = req.send().await.map_err(|e| unreachable(plain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| unreachable(plain(&e)))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unreachable(format!("{status}: {}", short(&text))));
        }
        if !status.is_success() {
            return Err(MlflowError::Refused {
                uri: self.base.clone(),
                what: what.to_string(),
                detail: format!("{status}: {}", short(&text)),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// `mlflow-artifacts:/1/abc/artifacts` or `mlflow-artifacts://host:port/1/abc/artifacts` →
/// `1/abc/artifacts`; `None` for artifacts stored elsewhere.
pub fn proxied_path(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(hosted) => hosted.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Some(path.trim_matches('/').to_string())
}

fn run_ack(info: &Value) -> RunAck {
    RunAck {
        run_id: str_at(info, "/run_id"),
        artifact_uri: str_at(info, "/artifact_uri"),
    }
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn pairs(list: &[(String, String)]) -> Vec<Value> {
    list.iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}

/// The error and its causes on one line (`error sending request: … Connection refused`).
fn plain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

fn short(text: &str) -> String {
    let one = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_artifact_paths() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://127.0.0.1:5000/2/x/artifacts").as_deref(),
            Some("2/x/artifacts")
        );
        assert_eq!(proxied_path("/tmp/mlruns/1/abc/artifacts"), None);
    }
}
