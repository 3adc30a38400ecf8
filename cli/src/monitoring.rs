//! Metrics over HTTP: `/metrics` (Prometheus text), `/livez`, and for
//! nodes `/readyz` (503 with the reasons when not ready).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// Serves the registry; returns the bound address.
pub(crate) async fn serve(address: SocketAddr, registry: Registry) -> std::io::Result<SocketAddr> {
    serve_with_health(address, registry, None).await
}

/// Serves the registry and, given a node's health, `/readyz`.
pub(crate) async fn serve_with_health(
    address: SocketAddr,
    registry: Registry,
    health: Option<Arc<phalanx_node::runtime::Health>>,
) -> std::io::Result<SocketAddr> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (
                            [(
                                CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            text,
                        )
                            .into_response(),
                        Err(_) => (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            "encoding metrics",
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    let problems = health.map(|h| h.problems()).unwrap_or_default();
                    if problems.is_empty() {
                        (axum::http::StatusCode::OK, "ready".to_string())
                    } else {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {}", problems.join("; ")),
                        )
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    Ok(bound)
}
