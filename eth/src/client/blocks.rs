//! Blocks: production (v3, full or blinded, v2 for nodes without it; JSON
//! or SSZ answers) and publication of signed blocks.

use alloy_primitives::U256;
use reqwest::Method;
use serde::Serialize;

use super::transport::{fork_header, Body, Request};
use super::{BeaconNodeClient, ClientError};
use crate::block_contents::ProducedBlock;
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::{Root, SignatureBytes, Slot};

impl BeaconNodeClient {
    /// `GET /eth/v3/validator/blocks/{slot}`: a full or blinded block,
    /// whichever the node's builder choice gives. A node that does not
    /// serve v3 (404/405) is asked with v2, which gives a full block.
    pub async fn produce_block<E: EthSpec>(
        &self,
        slot: Slot,
        randao_reveal: &SignatureBytes,
        graffiti: Option<Root>,
        builder_boost_factor: Option<u64>,
    ) -> Result<ProducedBlock<E>, ClientError> {
        let mut query = format!("{slot}?randao_reveal={randao_reveal}");
        if let Some(graffiti) = graffiti {
            query.push_str(&format!("&graffiti={graffiti}"));
        }
        let v2_path = format!("eth/v2/validator/blocks/{query}");
        if let Some(factor) = builder_boost_factor {
            query.push_str(&format!("&builder_boost_factor={factor}"));
        }
        let v3_path = format!("eth/v3/validator/blocks/{query}");
        match self.produce_at(&v3_path).await {
            Err(e) if matches!(e.status(), Some(404 | 405)) => self.produce_at(&v2_path).await,
            other => other,
        }
    }

    async fn produce_at<E: EthSpec>(&self, path: &str) -> Result<ProducedBlock<E>, ClientError> {
        let accept = [(
            "accept",
            "application/octet-stream;q=1.0,application/json;q=0.9".to_string(),
        )];
        self.call(
            Request {
                endpoint: "produce_block",
                method: Method::GET,
                path,
                body: Body::None,
                headers: if self.ssz_blocks { &accept } else { &[] },
                timeout: self.timeouts.block_production,
            },
            |bytes, headers| {
                let header_fork = fork_header(headers)?;
                let ssz = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/octet-stream"));
                if !ssz {
                    return ProducedBlock::from_json(bytes, header_fork).map_err(|e| e.to_string());
                }
                let fork =
                    header_fork.ok_or("an SSZ block without the Eth-Consensus-Version header")?;
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let blinded = header("eth-execution-payload-blinded") == Some("true");
                let value = |name: &str| -> Result<U256, String> {
                    header(name).map_or(Ok(U256::ZERO), |text| {
                        text.parse()
                            .map_err(|e| format!("the {name} header is not a number: {e}"))
                    })
                };
                ProducedBlock::from_ssz(
                    bytes,
                    fork,
                    blinded,
                    value("eth-execution-payload-value")?,
                    value("eth-consensus-block-value")?,
                )
                .map_err(|e| e.to_string())
            },
        )
        .await
    }

    /// `POST /eth/v2/beacon/blocks` (or `blinded_blocks`) with the signed
    /// block (or block contents) as JSON; v1 for nodes without v2.
    pub async fn publish_block(
        &self,
        fork: ForkName,
        signed: impl Serialize,
        blinded: bool,
    ) -> Result<(), ClientError> {
        let (endpoint, v2_path, v1_path) = if blinded {
            (
                "publish_blinded_block",
                "eth/v2/beacon/blinded_blocks",
                "eth/v1/beacon/blinded_blocks",
            )
        } else {
            (
                "publish_block",
                "eth/v2/beacon/blocks",
                "eth/v1/beacon/blocks",
            )
        };
        self.submit_versioned(endpoint, fork, v2_path, v1_path, true, signed)
            .await
    }
}
