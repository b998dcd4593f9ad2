//! Reading each API's rate-limit headers into a [`RateObservation`] for the [`super::Budget`].

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::budget::RateObservation;

/// Reads an API's rate headers into a [`RateObservation`].
pub type RateHeaderReader = fn(&HeaderMap) -> RateObservation;

pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

/// Trengo's rate headers: `x-ratelimit-limit` / `x-ratelimit-remaining`, per minute
/// (trengo-api.md §2 \[OFF\]).
pub fn trengo_rate_headers(headers: &HeaderMap) -> RateObservation {
    let limit = header_u64(headers, "x-ratelimit-limit").map(clamp_u32);
    let remaining = header_u64(headers, "x-ratelimit-remaining").map(clamp_u32);
    RateObservation {
        limit,
        remaining,
        window: limit.map(|_| Duration::from_secs(60)),
        daily_remaining: None,
        daily_limit: None,
    }
}

/// GHL's rate headers: `X-RateLimit-Max`, `-Remaining`, `-Interval-Milliseconds`,
/// `-Daily-Remaining`, `-Limit-Daily` (ghl-api.md §2 \[spec\]).
pub fn ghl_rate_headers(headers: &HeaderMap) -> RateObservation {
    RateObservation {
        limit: header_u64(headers, "x-ratelimit-max").map(clamp_u32),
        remaining: header_u64(headers, "x-ratelimit-remaining").map(clamp_u32),
        window: header_u64(headers, "x-ratelimit-interval-milliseconds")
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis),
        daily_remaining: header_u64(headers, "x-ratelimit-daily-remaining"),
        daily_limit: header_u64(headers, "x-ratelimit-limit-daily"),
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn ghl_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("X-RateLimit-Max", HeaderValue::from_static("100"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("42"));
        headers.insert(
            "X-RateLimit-Interval-Milliseconds",
            HeaderValue::from_static("10000"),
        );
        headers.insert(
            "X-RateLimit-Daily-Remaining",
            HeaderValue::from_static("199000"),
        );
        let seen = ghl_rate_headers(&headers);
        assert_eq!(seen.limit, Some(100));
        assert_eq!(seen.remaining, Some(42));
        assert_eq!(seen.window, Some(Duration::from_secs(10)));
        assert_eq!(seen.daily_remaining, Some(199_000));
    }
}
