//! Duties and validator lookups: answered by the beacon node, with the
//! cluster's group keys shown to the validator client as this operator's
//! shares, and the client's share keys asked for as group keys.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use phalanx_eth::EthSpec;
use serde_json::{json, Value as Json};

use super::{error, ApiState, Shared};

impl<E: EthSpec> ApiState<E> {
    /// Replaces group keys by this operator's shares in `pubkey` fields.
    pub(super) fn keys_to_shares(&self, value: &mut Json) {
        match value {
            Json::Object(map) => {
                for (key, field) in map.iter_mut() {
                    if key == "pubkey" {
                        if let Some(share) = field.as_str().and_then(|k| self.to_share.get(k)) {
                            *field = Json::String(share.clone());
                        }
                    } else {
                        self.keys_to_shares(field);
                    }
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|v| self.keys_to_shares(v)),
            _ => {}
        }
    }

    /// A validator id from the client: a share key becomes its group key.
    pub(super) fn id_to_group(&self, id: &str) -> String {
        self.to_group
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

pub(super) async fn duties_post<E: EthSpec>(
    State(state): State<Shared<E>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let indices = match serde_json::from_slice::<Json>(&body) {
        Ok(value @ Json::Array(_)) => value,
        Ok(_) => return error(400, "the body must be a JSON array of validator indices"),
        Err(e) => return error(400, format!("the body is not valid JSON: {e}")),
    };
    match state
        .forward_json(Method::POST, uri.path(), Some(indices))
        .await
    {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn duties_get<E: EthSpec>(State(state): State<Shared<E>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    match state.forward_json(Method::GET, path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn validators_get<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(state_id): Path<String>,
    // Pairs, not a struct: `id` and `status` come repeated (`id=1&id=2`,
    // as Lodestar sends them) or comma-separated.
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut path = format!("/eth/v1/beacon/states/{state_id}/validators");
    // Forwarded repeated, the array form every beacon node accepts
    // (Lodestar 1.5.1 answers a comma-separated `id` with no validators).
    let mut params = Vec::new();
    for (key, values) in &query {
        if key != "id" && key != "status" {
            continue;
        }
        for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let value = if key == "id" {
                state.id_to_group(value)
            } else {
                value.to_string()
            };
            params.push(format!("{key}={value}"));
        }
    }
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    match state.forward_json(Method::GET, &path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn validators_post<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(state_id): Path<String>,
    body: Bytes,
) -> Response {
    let mut request: Json = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value @ Json::Object(_)) => value,
            Ok(_) => return error(400, "the body must be a JSON object"),
            Err(e) => return error(400, format!("the body is not valid JSON: {e}")),
        }
    };
    if let Some(Json::Array(ids)) = request.get_mut("ids") {
        for id in ids.iter_mut() {
            if let Some(text) = id.as_str() {
                *id = Json::String(state.id_to_group(text));
            }
        }
    }
    let path = format!("/eth/v1/beacon/states/{state_id}/validators");
    match state.forward_json(Method::POST, &path, Some(request)).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

pub(super) async fn validator_get<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path((state_id, id)): Path<(String, String)>,
) -> Response {
    let path = format!(
        "/eth/v1/beacon/states/{state_id}/validators/{}",
        state.id_to_group(&id)
    );
    match state.forward_json(Method::GET, &path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}
