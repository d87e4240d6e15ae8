//! The kubeconfig user's credentials, as kubectl ≥ 1.26 accepts them.
//!
//! - The legacy `auth-provider` plugins `gcp` and `azure` are refused, as
//!   kubectl refuses them: their `cmd-path` runs any command the
//!   kubeconfig names, outside the exec plugin protocol.
//! - An `exec` plugin runs once per process, not once per client built
//!   (the client runs it three times while it builds), and again only
//!   when the credential it gave is about to expire. Its standard error
//!   goes to the terminal, as kubectl lets it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use kube::config::{AuthInfo, ExecConfig, ExecInteractiveMode};
use serde_json::{Value, json};
use tower::{BoxError, Layer, Service};

/// A credential is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// What an exec plugin printed, as the requests use it.
#[derive(Clone)]
enum Credential {
    Token { token: String, expires: Option<Timestamp> },
    Certificate { cert: String, key: String },
}

impl Credential {
    fn fresh(&self) -> bool {
        match self {
            Credential::Token { expires: Some(at), .. } => {
                Timestamp::now().checked_add(RENEW_BEFORE).is_ok_and(|soon| soon < *at)
            }
            _ => true,
        }
    }
}

/// Every credential an exec plugin gave in this process, by its plugin
/// configuration (command, arguments, environment, cluster).
static GIVEN: Mutex<BTreeMap<String, Credential>> = Mutex::new(BTreeMap::new());

/// Refuses what kubectl refuses, and replaces an `exec` plugin by the
/// credential it gives: a client certificate in place, a token through
/// the returned layer (which renews it when it expires).
pub fn prepare(auth: &mut AuthInfo, context: &str) -> Result<ExecTokenLayer, String> {
    if let Some(provider) = &auth.auth_provider {
        let instead = match provider.name.as_str() {
            "gcp" => {
                Some("the gke-gcloud-auth-plugin exec plugin (`gcloud components install gke-gcloud-auth-plugin`)")
            }
            "azure" => Some("the kubelogin exec plugin (`kubelogin convert-kubeconfig`)"),
            _ => None,
        };
        if let Some(instead) = instead {
            return Err(format!(
                "the user of kubeconfig context `{context}` uses the `{}` auth-provider, which kubectl removed in 1.26 (its `cmd-path` runs a command outside the exec plugin protocol); hcpc does not run it\n  help: use {instead} instead",
                provider.name
            ));
        }
    }
    let Some(exec) = auth.exec.take() else { return Ok(ExecTokenLayer(None)) };
    match obtain(&exec)? {
        Credential::Certificate { cert, key } => {
            auth.client_certificate_data = Some(cert);
            auth.client_key_data = Some(key.into());
            Ok(ExecTokenLayer(None))
        }
        Credential::Token { .. } => Ok(ExecTokenLayer(Some(Arc::new(exec)))),
    }
}

fn key(exec: &ExecConfig) -> String {
    serde_json::to_string(&json!({
        "command": exec.command, "args": exec.args, "env": exec.env, "cluster": exec.cluster,
        "apiVersion": exec.api_version,
    }))
    .unwrap_or_default()
}

/// The plugin's credential: the one given earlier in this process while
/// it is fresh, else the plugin's answer now.
fn obtain(exec: &ExecConfig) -> Result<Credential, String> {
    let key = key(exec);
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = given.get(&key).filter(|c| c.fresh()) {
        return Ok(c.clone());
    }
    let c = run(exec)?;
    given.insert(key, c.clone());
    Ok(c)
}

/// Runs the plugin as the client-go exec protocol says: `KUBERNETES_EXEC_INFO`
/// in its environment, an `ExecCredential` on its standard output.
fn run(exec: &ExecConfig) -> Result<Credential, String> {
    let Some(command) = exec.command.as_deref() else {
        return Err("the kubeconfig's exec plugin names no command".to_string());
    };
    let mut cmd = std::process::Command::new(command);
    cmd.args(exec.args.iter().flatten());
    for var in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (var.get("name"), var.get("value")) {
            cmd.env(name, value);
        }
    }
    let interactive = exec.interactive_mode != Some(ExecInteractiveMode::Never)
        && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut spec = json!({ "interactive": interactive });
    if exec.provide_cluster_info {
        spec["cluster"] = serde_json::to_value(&exec.cluster).unwrap_or(Value::Null);
    }
    let api_version = exec.api_version.as_deref().unwrap_or("client.authentication.k8s.io/v1");
    let info = json!({ "apiVersion": api_version, "kind": "ExecCredential", "spec": spec });
    cmd.env("KUBERNETES_EXEC_INFO", info.to_string());
    cmd.stdin(if interactive { std::process::Stdio::inherit() } else { std::process::Stdio::null() });
    cmd.stderr(std::process::Stdio::inherit());
    let hint = exec.install_hint.as_deref().map(|h| format!("\n  help: {}", h.trim())).unwrap_or_default();
    let out = cmd.output().map_err(|e| format!("cannot run the kubeconfig's exec plugin `{command}`: {e}{hint}"))?;
    if !out.status.success() {
        return Err(format!("the kubeconfig's exec plugin `{command}` failed ({})", out.status));
    }
    let answer: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the kubeconfig's exec plugin `{command}` printed no ExecCredential: {e}"))?;
    let field = |name: &str| answer.pointer(&format!("/status/{name}")).and_then(Value::as_str);
    if let (Some(cert), Some(key)) = (field("clientCertificateData"), field("clientKeyData")) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        return Ok(Credential::Certificate { cert: b64(cert), key: b64(key) });
    }
    let Some(token) = field("token") else {
        return Err(format!("the kubeconfig's exec plugin `{command}` gave neither a token nor a client certificate"));
    };
    let expires = match field("expirationTimestamp") {
        Some(at) => Some(at.parse::<Timestamp>().map_err(|e| {
            format!("the kubeconfig's exec plugin `{command}` gave an expirationTimestamp that is not a time: {e}")
        })?),
        None => None,
    };
    Ok(Credential::Token { token: token.to_string(), expires })
}

/// Adds the exec plugin's token to each request, asking the plugin again
/// only once the token is about to expire; passes requests through
/// unchanged when the user has no exec plugin.
#[derive(Clone)]
pub struct ExecTokenLayer(Option<Arc<ExecConfig>>);

impl<S> Layer<S> for ExecTokenLayer {
    type Service = ExecToken<S>;
    fn layer(&self, inner: S) -> ExecToken<S> {
        ExecToken { inner, exec: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct ExecToken<S> {
    inner: S,
    exec: Option<Arc<ExecConfig>>,
}

impl<S> Service<http::Request<Body>> for ExecToken<S>
where
    S: Service<http::Request<Body>, Error = BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let Some(exec) = &self.exec else { return Box::pin(self.inner.call(request)) };
        // Renewal runs the plugin: rare, and the runtime moves other
        // requests off this thread meanwhile.
        let credential = tokio::task::block_in_place(|| obtain(exec));
        let header = match credential {
            Ok(Credential::Token { token, .. }) => http::HeaderValue::from_str(&format!("Bearer {token}")),
            Ok(Credential::Certificate { .. }) => {
                return Box::pin(async { Err(BoxError::from("the exec plugin now gives a certificate")) });
            }
            Err(e) => return Box::pin(async move { Err(BoxError::from(e)) }),
        };
        match header {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Err(_) => return Box::pin(async { Err(BoxError::from("the exec plugin's token is not a valid header")) }),
        }
        let response = self.inner.call(request);
        Box::pin(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_auth_providers_are_refused_like_kubectl() {
        for name in ["gcp", "azure"] {
            let mut auth: AuthInfo = serde_json::from_value(json!({
                "auth-provider": {"name": name, "config": {"cmd-path": "/bin/sh", "cmd-args": "-c id"}}
            }))
            .unwrap();
            let e = prepare(&mut auth, "u").err().unwrap();
            assert!(e.contains(&format!("`{name}` auth-provider")) && e.contains("kubectl removed"), "{e}");
        }
    }

    #[test]
    fn an_exec_plugin_runs_once_per_process_and_again_near_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("runs");
        let soon = Timestamp::now().checked_add(Duration::from_secs(30)).unwrap();
        let script = |expiry: &str| {
            format!(
                "echo x >> {}; printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"{expiry}}}}}'",
                count.display()
            )
        };
        let plugin = |expiry: &str| -> AuthInfo {
            serde_json::from_value(json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                "command": "sh", "args": ["-c", script(expiry)], "interactiveMode": "Never"}}))
            .unwrap()
        };
        let runs = || std::fs::read_to_string(&count).unwrap_or_default().lines().count();
        for _ in 0..3 {
            let mut auth = plugin("");
            assert!(prepare(&mut auth, "u").unwrap().0.is_some());
            assert!(auth.exec.is_none());
        }
        assert_eq!(runs(), 1);
        // A token that expires within a minute is asked for again.
        let expiring = format!(",\"expirationTimestamp\":\"{soon}\"");
        for _ in 0..2 {
            prepare(&mut plugin(&expiring), "u").unwrap();
        }
        assert_eq!(runs(), 3);
    }
}
