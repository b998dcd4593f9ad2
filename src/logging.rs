//! Logging set-up with tracing-subscriber.
//!
//! Readable text on a terminal, one JSON object per line with `--log-format json` or
//! `log.format = "json"`. The level comes from `RUST_LOG` when set, else from `log.level`,
//! raised one step per `-v`. Logs go to stderr, so command output on stdout stays clean.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Raises a plain level by `verbose` steps; a filter expression is left as it is.
pub fn raise(level: &str, verbose: u8) -> String {
    match LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level.trim()))
    {
        Some(i) => LEVELS[(i + usize::from(verbose)).min(LEVELS.len() - 1)].to_string(),
        None if verbose > 0 => format!(
            "{level},trengo_sync={}",
            LEVELS[(2 + usize::from(verbose)).min(4)]
        ),
        None => level.to_string(),
    }
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, level: &str, verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(raise(level, verbose)),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests, the demo starting a daemon in-process) must not panic.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_raises_the_level_and_stops_at_trace() {
        assert_eq!(raise("info", 0), "info");
        assert_eq!(raise("info", 1), "debug");
        assert_eq!(raise("warn", 9), "trace");
    }
}
