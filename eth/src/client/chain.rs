//! The chain and the node: genesis, the network's configuration and fork
//! schedule, sync status, version, block roots and validators.

use reqwest::Method;

use super::transport::{Body, Request};
use super::{BeaconNodeClient, ClientError};
use crate::api::{Data, Fork, Genesis, NodeVersion, Syncing, ValidatorData, ValidatorsQuery};
use crate::config::NetworkConfig;
use crate::primitives::Root;

impl BeaconNodeClient {
    /// `GET /eth/v1/beacon/genesis`.
    pub async fn genesis(&self) -> Result<Genesis, ClientError> {
        let data: Data<Genesis> = self
            .get("genesis", "eth/v1/beacon/genesis", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/config/spec`, as a network configuration.
    pub async fn spec(&self) -> Result<NetworkConfig, ClientError> {
        let endpoint = "spec";
        self.call(
            Request {
                endpoint,
                method: Method::GET,
                path: "eth/v1/config/spec",
                body: Body::None,
                headers: &[],
                timeout: self.timeouts.default,
            },
            |bytes, _| {
                let data: Data<serde_json::Map<String, serde_json::Value>> =
                    serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                NetworkConfig::from_spec(&data.data).map_err(|e| e.to_string())
            },
        )
        .await
    }

    /// `GET /eth/v1/config/fork_schedule`.
    pub async fn fork_schedule(&self) -> Result<Vec<Fork>, ClientError> {
        let data: Data<Vec<Fork>> = self
            .get(
                "fork_schedule",
                "eth/v1/config/fork_schedule",
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/node/syncing`.
    pub async fn syncing(&self) -> Result<Syncing, ClientError> {
        let data: Data<Syncing> = self
            .get("syncing", "eth/v1/node/syncing", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/node/version`.
    pub async fn version(&self) -> Result<NodeVersion, ClientError> {
        let data: Data<NodeVersion> = self
            .get("version", "eth/v1/node/version", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/beacon/states/{state}/validators`, falling back to the
    /// `GET` form for nodes that do not serve the `POST` one.
    pub async fn validators(
        &self,
        state: &str,
        ids: &[String],
    ) -> Result<Vec<ValidatorData>, ClientError> {
        let path = format!("eth/v1/beacon/states/{state}/validators");
        let query = ValidatorsQuery {
            ids: ids.to_vec(),
            statuses: Vec::new(),
        };
        let body = serde_json::to_value(&query).unwrap_or_default();
        match self
            .post::<Data<Vec<ValidatorData>>>("validators", &path, body, &[], self.timeouts.duties)
            .await
        {
            Ok(data) => Ok(data.data),
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                // `id` repeated, the array form every beacon node accepts:
                // Lodestar 1.5.1 answers a comma-separated one with nothing.
                let query: Vec<String> = ids.iter().map(|id| format!("id={id}")).collect();
                let get_path = format!("{path}?{}", query.join("&"));
                let data: Data<Vec<ValidatorData>> = self
                    .get("validators", &get_path, self.timeouts.duties)
                    .await?;
                Ok(data.data)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /eth/v1/beacon/blocks/{block_id}/root` (`head`, `finalized`, a
    /// slot or a `0x` root).
    pub async fn block_root(&self, block_id: &str) -> Result<Root, ClientError> {
        #[derive(serde::Deserialize)]
        struct BlockRoot {
            root: Root,
        }
        let data: Data<BlockRoot> = self
            .get(
                "block_root",
                &format!("eth/v1/beacon/blocks/{block_id}/root"),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data.root)
    }
}
