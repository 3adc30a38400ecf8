//! Media types of the validator API: which POST routes take SSZ bodies
//! (others answer 415, so that a client falls back to JSON), whether a
//! client prefers SSZ answers, the versioned `{"version", "data"}` body,
//! the body limit, and reading list bodies from JSON or SSZ with every bad
//! item named.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ForkName;
use serde_json::{json, Value as Json};

use super::{error, failure};
use crate::core::ApiFailure;

/// The POST routes whose body may be SSZ (`application/octet-stream`), as
/// the beacon API lists them.
pub(super) const SSZ_BODIES: &[&str] = &[
    "/eth/v2/beacon/pool/attestations",
    "/eth/v2/validator/aggregate_and_proofs",
    "/eth/v1/validator/register_validator",
    "/eth/v1/beacon/blocks",
    "/eth/v2/beacon/blocks",
    "/eth/v1/beacon/blinded_blocks",
    "/eth/v2/beacon/blinded_blocks",
];

/// A request body's media type, lower case, without parameters.
pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("content-type")?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    (!media.is_empty()).then(|| media.to_ascii_lowercase())
}

/// Whether a request's body is SSZ.
pub(super) fn is_ssz(headers: &HeaderMap) -> bool {
    content_type(headers).as_deref() == Some("application/octet-stream")
}

/// Refuses a POST body in a media type its route does not take with 415,
/// so that a client falls back to JSON, as the beacon API has it.
pub(super) async fn media_type(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == Method::POST {
        match content_type(request.headers()).as_deref() {
            None | Some("application/json") => {}
            Some("application/octet-stream") if SSZ_BODIES.contains(&request.uri().path()) => {}
            Some(other) => {
                return error(
                    415,
                    format!(
                        "{other} bodies are not taken at {}: send application/json",
                        request.uri().path()
                    ),
                )
            }
        }
    }
    next.run(request).await
}

/// The largest request body the API reads. A signed block with as many
/// blobs as the network ever allows, in JSON (a 128 KiB blob is twice that
/// in hex, and Fulu adds 128 cell proofs per blob), on top of room for a
/// large client's lists of attestations or registrations.
pub(super) fn body_limit(network: &NetworkConfig) -> usize {
    const FLOOR: usize = 16 << 20;
    const PER_BLOB: usize = 300 << 10;
    let blobs = usize::try_from(network.max_blobs_per_block_ever()).unwrap_or(usize::MAX);
    FLOOR.saturating_add(blobs.saturating_mul(PER_BLOB))
}

pub(super) fn wants_ssz(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains("application/octet-stream") && !accept.starts_with("application/json")
        })
}

pub(super) fn ssz_response(bytes: Vec<u8>, fork: Option<ForkName>) -> Response {
    let mut response = (
        [("content-type", "application/octet-stream")],
        Body::from(bytes),
    )
        .into_response();
    if let Some(fork) = fork {
        if let Ok(value) = HeaderValue::from_str(fork.as_str()) {
            response
                .headers_mut()
                .insert(CONSENSUS_VERSION_HEADER, value);
        }
    }
    response
}

/// A `{"data": …}` body (with `version` and the fork header when `fork` is
/// given), or the SSZ bytes when the client prefers them.
pub(super) fn versioned_response(
    headers: &HeaderMap,
    ssz: Vec<u8>,
    data: Json,
    fork: Option<ForkName>,
) -> Response {
    if wants_ssz(headers) {
        return ssz_response(ssz, fork);
    }
    let mut response = match fork {
        Some(fork) => axum::Json(json!({"version": fork.as_str(), "data": data})).into_response(),
        None => axum::Json(json!({ "data": data })).into_response(),
    };
    if let Some(value) = fork.and_then(|f| HeaderValue::from_str(f.as_str()).ok()) {
        response
            .headers_mut()
            .insert(CONSENSUS_VERSION_HEADER, value);
    }
    response
}

/// The fork a v2 submission names in its consensus-version header, which
/// it must carry.
pub(super) fn required_fork(headers: &HeaderMap) -> Result<ForkName, Response> {
    match headers
        .get(CONSENSUS_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(name) => name
            .parse::<ForkName>()
            .map_err(|e| error(400, format!("{CONSENSUS_VERSION_HEADER}: {e}"))),
        None => Err(error(
            400,
            format!("the {CONSENSUS_VERSION_HEADER} header is required"),
        )),
    }
}

pub(super) fn parse_list(body: &Bytes) -> Result<Vec<Json>, Response> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Array(items)) => Ok(items),
        Ok(_) => Err(error(400, "the body must be a JSON array")),
        Err(e) => Err(error(400, format!("the body is not valid JSON: {e}"))),
    }
}

/// The items of a list body: from JSON one by one, so that a bad item is
/// named, or from SSZ (`List[T, N]`) all at once.
pub(super) fn list_items<T, U>(
    body: &Bytes,
    ssz: bool,
    what: &str,
    convert: impl Fn(T) -> Result<U, String>,
) -> Result<Vec<Result<U, String>>, Response>
where
    T: serde::de::DeserializeOwned + ssz::Decode,
{
    if ssz {
        let items = <Vec<T> as ssz::Decode>::from_ssz_bytes(body).map_err(|e| {
            error(
                400,
                format!("the body is not the SSZ of a list of {what}: {e:?}"),
            )
        })?;
        return Ok(items.into_iter().map(&convert).collect());
    }
    Ok(parse_list(body)?
        .into_iter()
        .map(|item| {
            serde_json::from_value::<T>(item)
                .map_err(|e| format!("not a {what}: {e}"))
                .and_then(&convert)
        })
        .collect())
}

/// Parses a JSON array of `T`, naming every item that does not parse.
pub(super) fn parse_items<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    what: &str,
) -> Result<Vec<T>, Response> {
    let items = parse_list(body)?
        .into_iter()
        .map(|item| serde_json::from_value::<T>(item).map_err(|e| format!("not a {what}: {e}")))
        .collect();
    all_items(items, what)
}

/// Every item, or a 400 naming each that did not parse.
pub(super) fn all_items<T>(items: Vec<Result<T, String>>, what: &str) -> Result<Vec<T>, Response> {
    let mut parsed = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok(value) => parsed.push(value),
            Err(reason) => failures.push((i, reason)),
        }
    }
    if failures.is_empty() {
        Ok(parsed)
    } else {
        Err(failure(ApiFailure {
            status: 400,
            message: format!("some items are not a {what}; none were accepted"),
            failures,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use phalanx_eth::block_contents::{BYTES_PER_BLOB, BYTES_PER_PROOF};

    #[test]
    fn ssz_is_served_only_when_preferred() {
        let mut headers = HeaderMap::new();
        assert!(!wants_ssz(&headers));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/octet-stream"),
        );
        assert!(wants_ssz(&headers));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, application/octet-stream;q=0.9"),
        );
        assert!(!wants_ssz(&headers));
    }

    #[tokio::test]
    async fn a_body_in_a_media_type_its_route_does_not_take_gets_415() {
        let app = Router::new()
            .route(
                "/eth/v2/beacon/pool/attestations",
                post(|| async { "taken" }),
            )
            .route(
                "/eth/v1/beacon/pool/sync_committees",
                post(|| async { "taken" }),
            )
            .layer(axum::middleware::from_fn(media_type));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let post = |path: &str, media: Option<&'static str>| {
            let mut request = http.post(format!("http://{address}{path}")).body("[]");
            if let Some(media) = media {
                request = request.header("content-type", media);
            }
            request.send()
        };
        let cases = [
            (
                "/eth/v2/beacon/pool/attestations",
                Some("application/octet-stream"),
                200,
            ),
            (
                "/eth/v1/beacon/pool/sync_committees",
                Some("application/octet-stream"),
                415,
            ),
            (
                "/eth/v1/beacon/pool/sync_committees",
                Some("Application/JSON; charset=utf-8"),
                200,
            ),
            ("/eth/v2/beacon/pool/attestations", Some("text/plain"), 415),
            ("/eth/v1/beacon/pool/sync_committees", None, 200),
            ("/eth/v1/beacon/pool/sync_committees", Some(""), 200),
        ];
        for (path, media, expected) in cases {
            let response = post(path, media).await.expect("answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, expected, "{path} {media:?}: {text}");
            if expected == 415 {
                assert!(text.contains("send application/json"), "{text}");
            }
        }
        server.abort();
    }

    #[test]
    fn a_block_with_every_blob_fits_the_body_limit() {
        let mainnet = NetworkConfig::built_in("mainnet").expect("mainnet");
        let blobs = mainnet.max_blobs_per_block_ever() as usize;
        // A Fulu block's blobs and cell proofs as JSON hex strings.
        let per_blob = 2 * BYTES_PER_BLOB + 4 + 128 * (2 * BYTES_PER_PROOF + 4);
        assert!(body_limit(&mainnet) > blobs * per_blob + (2 << 20));
        assert!(body_limit(&mainnet) < 64 << 20);
    }
}
