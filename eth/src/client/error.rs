//! Why a beacon-node call failed, and what the caller may do about it:
//! whether trying again may help, and whether a refusal only means the
//! node already has the object.

use std::time::Duration;

use reqwest::StatusCode;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error status.
    #[error("beacon node {node}: {endpoint} answered {status}: {message}")]
    Status {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
    /// No answer in time.
    #[error("beacon node {node}: {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The node could not be reached.
    #[error("beacon node {node}: {endpoint}: {reason}")]
    Transport {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The body did not decode.
    #[error("beacon node {node}: {endpoint}: cannot decode the response: {reason}")]
    Decode {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Every node failed.
    #[error("no beacon node answered {endpoint}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllFailed {
        /// The endpoint called.
        endpoint: &'static str,
        /// Each node's failure.
        errors: Vec<ClientError>,
    },
    /// A beacon-node address that is not a usable URL.
    #[error("invalid beacon node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The address given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status, if a node answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same call may succeed if made again: the node was
    /// unreachable, too slow or failing (5xx); a 4xx, an undecodable
    /// answer or a bad URL will not change.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status >= 500,
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::AllFailed { errors, .. } => errors.iter().any(ClientError::is_retriable),
            ClientError::Decode { .. } | ClientError::InvalidUrl { .. } => false,
        }
    }

    /// Whether a node refused a submission only because it already has the
    /// object, which for a cluster whose every node broadcasts the same
    /// object is success: Lodestar says `ATTESTATION_ALREADY_KNOWN`, or
    /// gossipsub's `PublishError.Duplicate` for a block another node
    /// published; others say "already known".
    pub fn is_already_known(&self) -> bool {
        match self {
            ClientError::Status { message, .. } => {
                let message = message.to_ascii_lowercase();
                message.contains("already_known")
                    || message.contains("already known")
                    || message.contains("publisherror.duplicate")
            }
            ClientError::AllFailed { errors, .. } => {
                errors.iter().any(ClientError::is_already_known)
            }
            _ => false,
        }
    }

    /// Whether the request itself is at fault (a 4xx), so that no other
    /// node is asked.
    pub(super) fn is_final(&self) -> bool {
        matches!(self, ClientError::Status { status, .. } if (400..500).contains(status))
    }
}

/// The beacon-API error body's message (`{"code":…, "message":…}`), or the
/// start of the raw body.
pub(super) fn error_message(status: StatusCode, bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: String,
        #[serde(default)]
        failures: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(error) if error.failures.is_empty() => error.message,
        Ok(error) => format!(
            "{} ({} failures: {})",
            error.message,
            error.failures.len(),
            serde_json::Value::Array(error.failures)
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.chars().take(300).collect();
            if text.trim().is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no message")
                    .to_string()
            } else {
                text
            }
        }
    }
}

/// An error's text without the URL reqwest puts in it (it may carry credentials).
pub fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut reason = if error.is_connect() {
        "cannot connect".to_string()
    } else if error.is_body() || error.is_decode() {
        "broken response body".to_string()
    } else {
        "request failed".to_string()
    };
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> ClientError {
        ClientError::Status {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            status,
            message: message.into(),
        }
    }

    fn transport() -> ClientError {
        ClientError::Transport {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            reason: "cannot connect".into(),
        }
    }

    #[test]
    fn only_unreachable_slow_or_failing_nodes_are_worth_a_retry() {
        assert!(status(503, "busy").is_retriable());
        assert!(status(500, "internal").is_retriable());
        assert!(!status(400, "bad attestation").is_retriable());
        assert!(!status(404, "not found").is_retriable());
        assert!(transport().is_retriable());
        assert!(ClientError::Timeout {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            timeout: Duration::from_secs(4),
        }
        .is_retriable());
        assert!(!ClientError::Decode {
            node: "http://bn".into(),
            endpoint: "genesis",
            reason: "eof".into(),
        }
        .is_retriable());
        // Several nodes: one that may recover is enough.
        let all = |errors| ClientError::AllFailed {
            endpoint: "submit_attestations",
            errors,
        };
        assert!(all(vec![status(400, "bad"), transport()]).is_retriable());
        assert!(!all(vec![status(400, "bad"), status(422, "bad")]).is_retriable());
    }

    #[test]
    fn a_duplicate_broadcast_is_already_known() {
        let lodestar = status(
            400,
            "Error processing attestations: ATTESTATION_ERROR_ATTESTATION_ALREADY_KNOWN",
        );
        assert!(lodestar.is_already_known());
        assert!(status(500, "PublishError.Duplicate").is_already_known());
        assert!(status(400, "attestation already known").is_already_known());
        assert!(!status(400, "busy").is_already_known());
        assert!(!transport().is_already_known());
        let all = ClientError::AllFailed {
            endpoint: "publish_block",
            errors: vec![transport(), status(500, "PublishError.Duplicate")],
        };
        assert!(all.is_already_known());
    }
}
