//! JSON bodies and errors: a result is the protocol's result object as it is; an error
//! is `{"error": {"code", "message"}}` with the protocol's code and the HTTP status
//! that code means.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gamesa_ingress::respond::Respond;
use gamesa_wire::{ErrorBody, ErrorCode};
use serde::Serialize;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `value` as a JSON body with `status`.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, JSON)], body).into_response(),
        Err(error) => failure(ErrorBody::new(
            ErrorCode::Internal,
            format!("cannot encode the reply: {error}"),
        )),
    }
}

/// The HTTP status a protocol error code stands for.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::FrameTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::MalformedFrame
        | ErrorCode::TooDeep
        | ErrorCode::InvalidRequest
        | ErrorCode::UnsupportedVersion
        | ErrorCode::AlreadyAuthenticated => StatusCode::BAD_REQUEST,
        ErrorCode::UnknownType | ErrorCode::UnknownOrder | ErrorCode::UnknownComponent => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::NotAuthenticated | ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::InsufficientCredits
        | ErrorCode::Rejected
        | ErrorCode::NotYours
        | ErrorCode::NoTurn => StatusCode::CONFLICT,
        ErrorCode::IdleTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::TooManyConnections | ErrorCode::ShuttingDown | ErrorCode::Unavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error reply, with the status its code stands for.
pub fn failure(error: ErrorBody) -> Response {
    failure_with(status_of(error.code), error)
}

/// An error reply with a status of the caller's choosing (405, 415).
pub fn failure_with(status: StatusCode, error: ErrorBody) -> Response {
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a ErrorBody,
    }
    let mut response = match serde_json::to_vec(&Failed { error: &error }) {
        Ok(body) => (status, [(header::CONTENT_TYPE, JSON)], body).into_response(),
        // An error body is two strings: this cannot fail, but must not panic either.
        Err(_) => status.into_response(),
    };
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gamesa\""),
        );
    }
    response
}

/// Collects what the dispatcher answers as an HTTP response.
#[derive(Debug, Default)]
pub struct JsonReply {
    pub response: Option<Response>,
}

impl Respond for JsonReply {
    fn ok<T: Serialize>(&mut self, result: &T) {
        self.response = Some(json(StatusCode::OK, result));
    }

    fn error(&mut self, error: ErrorBody) {
        self.response = Some(failure(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for code in [
            ErrorCode::FrameTooLarge,
            ErrorCode::MalformedFrame,
            ErrorCode::TooDeep,
            ErrorCode::InvalidRequest,
            ErrorCode::UnknownType,
            ErrorCode::UnsupportedVersion,
            ErrorCode::NotAuthenticated,
            ErrorCode::Unauthorized,
            ErrorCode::AlreadyAuthenticated,
            ErrorCode::Forbidden,
            ErrorCode::RateLimited,
            ErrorCode::UnknownOrder,
            ErrorCode::UnknownComponent,
            ErrorCode::InsufficientCredits,
            ErrorCode::Rejected,
            ErrorCode::TooManyConnections,
            ErrorCode::IdleTimeout,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
        ] {
            let status = status_of(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}: {status}"
            );
        }
        let response = failure(ErrorBody::new(ErrorCode::Unauthorized, "no"));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
