//! GHL's error bodies, as the fake renders them.
//!
//! GHL v2 answers errors as `{statusCode, message, error?, traceId}`; `message` is a string,
//! except on 422 where it is an array of validation messages (ghl-api.md §9 \[spec S4\]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One error answer of the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct GhlError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `message` field: one string, or a list on 422.
    pub message: Value,
    /// The `error` field (reason phrase), where GHL sends one.
    pub error: Option<&'static str>,
    /// Extra fields some errors carry (the duplicate-contact `meta`).
    pub extra: Option<(&'static str, Value)>,
}

impl GhlError {
    fn new(status: StatusCode, message: impl Into<String>, error: Option<&'static str>) -> Self {
        Self {
            status,
            message: Value::String(message.into()),
            error,
            extra: None,
        }
    }

    /// 400 with GHL's `Bad Request` reason (ghl-api.md §9: "real example adds error").
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some("Bad Request"))
    }

    /// 401, the one message GHL uses for missing, wrong and expired tokens (§9).
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Invalid token: access token is invalid",
            Some("Unauthorized"),
        )
    }

    /// 401 for a bad OAuth client id or secret.
    pub fn bad_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Invalid client: client_id or client_secret is wrong",
            Some("Unauthorized"),
        )
    }

    /// 403 when a request names a location the token does not belong to (§9 \[obs n8n#11353\]).
    pub fn wrong_location() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "The token does not have access to this location",
            None,
        )
    }

    /// 404 for an id that does not exist (or no longer does).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{what} not found"),
            Some("Not Found"),
        )
    }

    /// 422 with its array of validation messages (§9: "`message` is an array here").
    pub fn unprocessable(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: Value::Array(messages.into_iter().map(Value::String).collect()),
            error: Some("Unprocessable Entity"),
            extra: None,
        }
    }

    /// 429; GHL documents no body, so it gets the common shape (§2, §9).
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests: the rate limit of this location is exhausted",
            Some("Too Many Requests"),
        )
    }

    /// A 5xx chosen by fault injection.
    pub fn server_error(status: u16) -> Self {
        let (status, reason) = match status {
            502 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
            503 => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        };
        Self::new(status, "Internal server error", Some(reason))
    }

    /// Adds a field beside the usual ones.
    pub fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// The body as GHL would send it, with a fresh `traceId`.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "statusCode": self.status.as_u16(),
            "message": self.message,
            "traceId": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(error) = self.error {
            body["error"] = Value::String(error.to_owned());
        }
        if let Some((key, value)) = &self.extra {
            body[*key] = value.clone();
        }
        body
    }
}

impl IntoResponse for GhlError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprocessable_carries_a_message_array() {
        let body = GhlError::unprocessable(vec!["pageLimit must be a number".into()]).body();
        assert_eq!(body["statusCode"], 422);
        assert!(body["message"].is_array());
        assert_eq!(body["error"], "Unprocessable Entity");
        assert!(body["traceId"].is_string());
    }

    #[test]
    fn unauthorized_matches_ghl_wording() {
        let body = GhlError::unauthorized().body();
        assert_eq!(body["message"], "Invalid token: access token is invalid");
        assert_eq!(body["error"], "Unauthorized");
    }
}
