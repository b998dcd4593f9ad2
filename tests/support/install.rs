//! `trengo-sync auth ghl` as a user runs it: an OAuth configuration for a world, the command
//! as a child process with its stdin and stdout at hand, and the fake's authorization page
//! played by the test as the browser.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use trengo_sync::sim::ghl::GhlFakeOptions;
use trengo_sync::sim::world::SimWorld;

/// The redirect URI the paste tests register: nothing listens there, the test is the browser.
pub const PASTE_REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

/// The fake app's client id (the GHL fake's default).
pub fn client_id() -> String {
    GhlFakeOptions::default().client_id
}

/// The fake app's client secret (the GHL fake's default).
pub fn client_secret() -> String {
    GhlFakeOptions::default()
        .client_secret
        .expose_secret()
        .to_owned()
}

/// The world's configuration with `[ghl.oauth]` instead of its private token: the fake's
/// client (with `secret`), its authorization page, `extra` lines, and no refresh token (the
/// install stores one). Written to `dir/oauth.toml`; the daemon's listen address is returned.
pub fn oauth_config(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    secret: &str,
    extra: &str,
) -> (PathBuf, std::net::SocketAddr) {
    let (plain, listen) = super::write_config(world, dir);
    let text = std::fs::read_to_string(&plain).unwrap();
    let pit = world.ghl_token();
    let without = text.replace(&format!("token = \"{}\"\n", pit.expose_secret()), "");
    assert_ne!(without, text, "the private token line was not found");
    let text = format!(
        "{without}\n[ghl.oauth]\nclient_id = \"{}\"\nclient_secret = \"{secret}\"\n\
         authorize_url = \"{}/oauth/chooselocation\"\n{extra}\n",
        client_id(),
        world.ghl_base_url()
    );
    let path = dir.path().join("oauth.toml");
    std::fs::write(&path, text).unwrap();
    (path, listen)
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `trengo-sync auth ghl ARGS`.
pub struct AuthRun {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Everything read from stdout so far.
    pub seen: String,
}

impl AuthRun {
    /// Starts `trengo-sync auth ghl ARGS --config CONFIG` with `env` added.
    pub fn start(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
        cmd.args(["auth", "ghl"])
            .args(args)
            .args(["--config", config.to_str().unwrap()]);
        for (k, _) in std::env::vars() {
            if k.starts_with("TRENGO_SYNC__") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "warn").envs(env.iter().copied());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdout,
            seen: String::new(),
        }
    }

    /// Reads stdout up to the authorization URL it prints, and returns that URL.
    pub async fn url(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(60), self.stdout.read_line(&mut line))
                .await
                .expect("no authorization URL within a minute")
                .unwrap();
            assert!(n > 0, "stdout ended before a URL: {}", self.seen);
            self.seen.push_str(&line);
            if line.starts_with("http") {
                return line.trim().to_owned();
            }
        }
    }

    /// Reads stdout up to a line containing `text`.
    pub async fn wait_for_line(&mut self, text: &str) {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(60), self.stdout.read_line(&mut line))
                .await
                .expect("the line did not come within a minute")
                .unwrap();
            assert!(n > 0, "stdout ended before `{text}`: {}", self.seen);
            self.seen.push_str(&line);
            if line.contains(text) {
                return;
            }
        }
    }

    /// Types `text` and Enter on stdin.
    pub async fn paste(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits (at most a minute) for the end: the exit status, all of stdout, and stderr.
    pub async fn finish(mut self) -> (ExitStatus, String, String) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        let mut stderr = String::new();
        let mut err = self.child.stderr.take().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), async {
            self.stdout.read_to_string(&mut rest).await.unwrap();
            err.read_to_string(&mut stderr).await.unwrap();
            self.child.wait().await.unwrap()
        })
        .await
        .expect("`auth ghl` did not end within a minute");
        self.seen.push_str(&rest);
        (status, self.seen, stderr)
    }
}

/// The code in a redirect URL.
pub fn code_of(redirect: &url::Url) -> String {
    redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("the redirect carries a code")
}

/// The refresh token in the store at `path`, if any.
pub fn stored_refresh_token(path: &Path) -> Option<String> {
    let store = trengo_sync::store::Store::open_read_only(path).ok()?;
    trengo_sync::store::oauth::load(store.conn())
        .unwrap()
        .map(|t| t.refresh_token.expose_secret().to_owned())
}
