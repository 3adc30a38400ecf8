//! Parsing requests: query strings, the `Eth-Consensus-Version` header and
//! JSON bodies.

use std::str::FromStr;

use axum::body::Bytes;
use axum::http::HeaderMap;
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::ForkName;
use serde_json::Value;

use super::error::ApiError;

/// The parsed query string of a request.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: Option<String>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a parameter, repeated or comma-separated.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(super) fn optional<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::BadRequest(format!("query parameter {name}={value:?} is invalid"))
                })
            })
            .transpose()
    }

    pub(super) fn required<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        self.optional(name)?
            .ok_or_else(|| ApiError::BadRequest(format!("query parameter {name} is required")))
    }
}

pub(super) fn parse_u64(what: &str, text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?} is not a number")))
}

/// The fork the `Eth-Consensus-Version` header names, if it is present.
pub(super) fn declared_fork(headers: &HeaderMap) -> Result<Option<ForkName>, ApiError> {
    headers
        .get(CONSENSUS_VERSION_HEADER)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{CONSENSUS_VERSION_HEADER} {value:?} is not a fork this mock knows"
                    ))
                })
        })
        .transpose()
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

pub(super) fn parse_array(body: &Bytes) -> Result<Vec<Value>, ApiError> {
    match parse_body(body)? {
        Value::Array(items) => Ok(items),
        _ => Err(ApiError::BadRequest(
            "the body must be a JSON array".to_string(),
        )),
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    item: &Value,
) -> Result<T, String> {
    serde_json::from_value(item.clone()).map_err(|e| format!("cannot decode {what}: {e}"))
}

/// Validator indices as a duties request sends them (quoted or bare).
pub(super) fn parse_indices(body: &Bytes) -> Result<Vec<u64>, ApiError> {
    parse_array(body)?
        .iter()
        .map(|item| match item {
            Value::String(text) => parse_u64("validator index", text),
            Value::Number(number) => number.as_u64().ok_or_else(|| {
                ApiError::BadRequest(format!("validator index {number} is not an index"))
            }),
            other => Err(ApiError::BadRequest(format!(
                "validator index {other} is not an index"
            ))),
        })
        .collect()
}
