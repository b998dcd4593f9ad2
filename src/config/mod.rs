//! Configuration: a TOML file overridden by `TRENGO_SYNC__SECTION__KEY` environment variables.
//!
//! Loading goes in four steps, each with errors that name the file (or variable), the key
//! path and what was expected: the file is read and its TOML syntax checked (line and
//! column on error); figment merges file and environment into [`Config`], whose value
//! types validate themselves ([`types`]); secrets given as `*_file` keys are read (so
//! systemd `LoadCredential=` works); then [`validate`] checks the rules between keys.
//! Every failure maps to exit code 78 (`EX_CONFIG`). Secrets never appear in `Debug`
//! output or in any error.

pub mod contacts;
pub mod sections;
pub mod types;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use contacts::{ContactsConfig, ContextConfig, FieldEntry, TaskFieldsConfig, WelcomeConfig};
pub use sections::*;
pub use types::{CronExpr, HttpUrl, Secret, Since, Span, Zone};

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/trengo-sync/config.toml";

/// Prefix of environment overrides: `TRENGO_SYNC__TRENGO__TOKEN` sets `trengo.token`.
pub const ENV_PREFIX: &str = "TRENGO_SYNC__";

/// Exit code for every configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: i32 = 78;

/// The whole configuration, after validation. See `config.example.toml` for every key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[trengo]`: the Trengo API's URLs, token and time zone.
    pub trengo: TrengoConfig,
    /// `[ghl]`: the GHL API, the location, and a private token or OAuth.
    pub ghl: GhlConfig,
    /// `[store]`: where the SQLite state lives.
    pub store: StoreConfig,
    /// `[http]`: the listener for status, health, metrics and webhooks.
    pub http: HttpConfig,
    /// `[log]`: log format and level.
    pub log: LogConfig,
    /// `[schedule]`: when polls, sweeps and reconciles run, and the watermark overlaps.
    pub schedule: ScheduleConfig,
    /// `[link]`: which tickets and tasks enter the sync, and how links are made.
    pub link: LinkConfig,
    /// `[status]`: how ticket statuses map to task completion, and the direction.
    pub status: StatusConfig,
    /// `[tags]`: the managed tags that cross between ticket labels and contact tags.
    pub tags: TagsConfig,
    /// `[comments]`: whether and how notes cross (internal notes ⇄ contact notes).
    pub comments: CommentsConfig,
    /// `[assignee]`: whether assignees cross, matched by user e-mail.
    pub assignee: AssigneeConfig,
    /// `[conflicts]`: the conflict policy of each field.
    pub conflicts: ConflictsConfig,
    /// `[limits]`: rate budgets, retries and the mass-change brake.
    pub limits: LimitsConfig,
    /// `[webhooks]`: optional push hints and their signing secrets.
    pub webhooks: WebhooksConfig,
    /// `[notify]`
    pub notify: NotifyConfig,
    /// `[contacts]`: contact pairs, the field map and the agent context.
    pub contacts: ContactsConfig,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value came from: the file path, the environment variable, or `default`.
    pub origin: String,
    /// The key path, such as `limits.trengo_per_minute`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.origin, self.key, self.message)
        }
    }
}

/// Why the configuration could not be loaded. Every variant means exit code 78.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist.
    #[error(
        "configuration file {path} does not exist; create it from config.example.toml, \
         or pass another with --config PATH"
    )]
    Missing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("configuration file {path} cannot be read: {reason}")]
    Unreadable {
        /// The path that was tried.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error(
        "configuration file {path}: TOML syntax error at line {line}, column {column}: {message}"
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// Values are missing, of the wrong type, or break a rule.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The process exit code for this error: always 78.
    pub fn exit_code(&self) -> i32 {
        EXIT_CONFIG
    }

    /// The problems, when the error is about values.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
            _ => &[],
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "invalid configuration ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

/// Loads the configuration from `path` and the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, Env::prefixed(ENV_PREFIX).split("__"))
}

/// Loads the configuration from `path` and the given environment provider (injected so tests
/// can supply variables without touching the process environment).
pub fn load_with(path: &Path, env: Env) -> Result<Config, ConfigError> {
    let text = read_file(path)?;
    check_syntax(path, &text)?;
    let figment = Figment::new()
        .merge(Toml::string(&text))
        .merge(TextAwareEnv(env));
    let origin_of = |key: &str| origin(&figment, path, key);
    let mut config: Config = figment
        .extract()
        .map_err(|e| ConfigError::Invalid(figment_problems(e, path, &figment)))?;
    config.webhooks.trengo_secrets =
        upper_case_events(std::mem::take(&mut config.webhooks.trengo_secrets));
    let mut problems = secrets::resolve(&mut config, &origin_of);
    problems.extend(validate::validate(&config, &origin_of));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Keys whose values are text, whatever they look like: an environment value for one of them
/// is taken as written (figment would read `007` as the number 7).
const TEXT_KEYS: &[&str] = &[
    "ghl.location_id",
    "ghl.version",
    "ghl.oauth.client_id",
    "link.trengo_label",
    "link.ghl_tag",
    "link.ghl_title_prefix",
    "tags.managed_prefix",
    "log.level",
    "webhooks.ghl_public_key",
    "store.path",
];

/// Whether the value at `key` is text (see [`TEXT_KEYS`]; secrets and `*_file` paths too).
fn is_text_key(key: &str) -> bool {
    is_secret_key(key)
        || key.ends_with("_file")
        || key.starts_with("assignee.users.")
        || TEXT_KEYS.contains(&key)
}

/// figment's environment provider, except that text keys keep their value as written.
struct TextAwareEnv(Env);

impl figment::Provider for TextAwareEnv {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        let mut dict = Dict::new();
        for (key, raw) in self.0.iter() {
            let value = if is_text_key(key.as_str()) {
                Value::from(raw)
            } else {
                // figment's own reading: numbers, booleans, arrays and inline tables.
                raw.parse::<Value>().unwrap_or_else(|e| match e {})
            };
            insert_nested(&mut dict, key.as_str(), value);
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Puts `value` at the dotted `key` of `dict`, making the tables on the way.
fn insert_nested(dict: &mut figment::value::Dict, key: &str, value: figment::value::Value) {
    use figment::value::{Dict, Value};
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

/// Trengo event names in upper case, as Trengo spells them: an environment variable's key
/// arrives lower-cased (`TRENGO_SYNC__WEBHOOKS__TRENGO_SECRETS__NOTE` → `note`). A key given
/// in another case (the environment, merged last) wins over the same event in upper case.
fn upper_case_events(
    secrets: std::collections::BTreeMap<String, Secret>,
) -> std::collections::BTreeMap<String, Secret> {
    let (exact, other): (Vec<_>, Vec<_>) = secrets
        .into_iter()
        .partition(|(k, _)| *k == k.to_ascii_uppercase());
    let mut out: std::collections::BTreeMap<String, Secret> = exact.into_iter().collect();
    for (k, v) in other {
        out.insert(k.to_ascii_uppercase(), v);
    }
    out
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::Missing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(ConfigError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn check_syntax(path: &Path, text: &str) -> Result<(), ConfigError> {
    match text.parse::<toml::Table>() {
        Ok(_) => Ok(()),
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            })
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where the value at `key` came from: the environment variable's name, or the file path.
fn origin(figment: &Figment, path: &Path, key: &str) -> String {
    // An entry of a list (`contacts.fields[2].trengo`) came from where the list did.
    let key = key.split_once('[').map_or(key, |(list, _)| list);
    match figment.find_metadata(key) {
        Some(meta) if meta.name.contains("environment") => env_var_name(key),
        Some(_) => path.display().to_string(),
        None => format!("{} (default)", path.display()),
    }
}

/// The environment variable that sets `key`: `limits.max_attempts` → `TRENGO_SYNC__LIMITS__MAX_ATTEMPTS`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// Whether a key holds a secret, so its value is never echoed.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    key.starts_with("webhooks.trengo_secrets")
        || matches!(
            last,
            "token"
                | "client_secret"
                | "refresh_token"
                | "status_token"
                | "webhook_url"
                | "smtp_password"
        )
}

fn figment_problems(error: figment::Error, path: &Path, figment: &Figment) -> Vec<Problem> {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = match &e.metadata {
                Some(meta) if meta.name.contains("environment") => env_var_name(&key),
                _ => origin(figment, path, &key),
            };
            let message = if is_secret_key(&key) {
                match &e.kind {
                    figment::error::Kind::InvalidType(..) => {
                        "expected a secret string (value not shown)".to_string()
                    }
                    figment::error::Kind::Message(m) => m.clone(),
                    other => other.to_string(),
                }
            } else {
                describe_kind(&e.kind)
            };
            Problem {
                origin,
                key,
                message,
            }
        })
        .collect()
}

/// Figment's error kinds in words a user reads without knowing Rust's type names.
fn describe_kind(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", plain_type(expected))
        }
        Kind::UnknownVariant(found, expected) => format!(
            "unknown value `{found}`; expected one of: {}",
            expected.join(", ")
        ),
        Kind::UnknownField(found, expected) => format!(
            "unknown key `{found}` (a typo?); expected one of: {}",
            expected.join(", ")
        ),
        Kind::MissingField(field) => format!("missing key `{field}`"),
        other => other.to_string(),
    }
}

fn plain_type(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "`true` or `false`".into(),
        other => other.to_string(),
    }
}

mod secrets {
    //! Reads `*_file` secrets, so systemd `LoadCredential=` can hand tokens over as files.

    use std::path::PathBuf;

    use super::{Config, Problem, Secret};

    pub(super) fn resolve(config: &mut Config, origin: &dyn Fn(&str) -> String) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut one = |key: &str, value: &mut Option<Secret>, file: &Option<PathBuf>| {
            if let Err(p) = read_into(key, value, file, origin) {
                problems.push(p);
            }
        };
        one(
            "trengo.token",
            &mut config.trengo.token,
            &config.trengo.token_file.clone(),
        );
        one(
            "ghl.token",
            &mut config.ghl.token,
            &config.ghl.token_file.clone(),
        );
        if let Some(oauth) = config.ghl.oauth.as_mut() {
            let file = oauth.client_secret_file.clone();
            one("ghl.oauth.client_secret", &mut oauth.client_secret, &file);
            let file = oauth.refresh_token_file.clone();
            one("ghl.oauth.refresh_token", &mut oauth.refresh_token, &file);
        }
        let file = config.notify.webhook_url_file.clone();
        one("notify.webhook_url", &mut config.notify.webhook_url, &file);
        let file = config.notify.smtp_password_file.clone();
        one(
            "notify.smtp_password",
            &mut config.notify.smtp_password,
            &file,
        );
        one(
            "http.status_token",
            &mut config.http.status_token,
            &config.http.status_token_file.clone(),
        );
        let hooks = &mut config.webhooks;
        for (event, file) in hooks.trengo_secret_files.clone() {
            let mut value = None;
            let key = format!("webhooks.trengo_secrets.{event}");
            if hooks.trengo_secrets.contains_key(&event) {
                let file_key = format!("webhooks.trengo_secret_files.{event}");
                problems.push(Problem {
                    origin: origin(&file_key),
                    key: file_key,
                    message: format!(
                        "set either `{key}` or `webhooks.trengo_secret_files.{event}`, not both"
                    ),
                });
                continue;
            }
            match read_into(&key, &mut value, &Some(file), origin) {
                Ok(()) => {
                    if let Some(secret) = value {
                        hooks.trengo_secrets.insert(event, secret);
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        problems
    }

    fn read_into(
        key: &str,
        value: &mut Option<Secret>,
        file: &Option<PathBuf>,
        origin: &dyn Fn(&str) -> String,
    ) -> Result<(), Problem> {
        let Some(file) = file else { return Ok(()) };
        // `webhooks.trengo_secrets.EVENT` is read from `webhooks.trengo_secret_files.EVENT`.
        let file_key = match key.strip_prefix("webhooks.trengo_secrets.") {
            Some(event) => format!("webhooks.trengo_secret_files.{event}"),
            None => format!("{key}_file"),
        };
        if value.is_some() {
            return Err(Problem {
                origin: origin(&file_key),
                key: file_key,
                message: format!("set either `{key}` or `{key}_file`, not both"),
            });
        }
        match std::fs::read_to_string(file) {
            Ok(text) if text.trim().is_empty() => Err(Problem {
                origin: origin(&file_key),
                key: file_key,
                message: format!("the secret file {} is empty", file.display()),
            }),
            Ok(text) => {
                *value = Some(Secret::new(text.trim()));
                Ok(())
            }
            Err(e) => Err(Problem {
                origin: origin(&file_key),
                key: file_key,
                message: format!("cannot read the secret file {}: {e}", file.display()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a\nbc\nd", 0), (1, 1));
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
    }

    #[test]
    fn secret_keys_are_recognised() {
        assert!(is_secret_key("trengo.token"));
        assert!(is_secret_key("ghl.oauth.client_secret"));
        assert!(is_secret_key("http.status_token"));
        assert!(!is_secret_key("http.status_token_file"));
        assert!(!is_secret_key("webhooks.trengo_secret_files.NOTE"));
        assert!(is_secret_key("webhooks.trengo_secrets.TICKET_CLOSED"));
        assert!(!is_secret_key("trengo.token_file"));
        assert!(is_secret_key("notify.webhook_url"));
        assert!(is_secret_key("notify.smtp_password"));
        assert!(!is_secret_key("ghl.location_id"));
    }
}
