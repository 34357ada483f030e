//! Serving what this peer holds: answers other peers' block requests from the [`BlockStore`].
//!
//! A store request is honoured only if the block is no larger than a sealed block, its owner's
//! key is a usable RSA key, the owner signed the block's address, and it fits in the donated
//! space. A delete is honoured only when signed by the key that stored the block.

use futures::{channel::mpsc, StreamExt};

use crate::{
    block::{BlockId, MAX_SEALED_BLOCK},
    crypto::{rsa_keys::PublicKey, sha256},
    net::{Client, InboundRequest},
    platform::Shared,
    protocol::{delete_statement, store_statement, Request, Response},
    store::BlockStore,
};

/// Answers inbound block requests until the network stops.
pub(crate) async fn serve(
    client: Client,
    mut inbound: mpsc::Receiver<InboundRequest>,
    store: Shared<BlockStore>,
) {
    while let Some(InboundRequest { id, peer, request }) = inbound.next().await {
        let response = answer(&store, request).await;
        if let Response::Refused { reason } = &response {
            tracing::info!(%peer, "block request refused: {reason}");
        }
        if client.respond(id, response).await.is_err() {
            return;
        }
    }
}

fn refused(reason: impl Into<String>) -> Response {
    Response::Refused {
        reason: reason.into(),
    }
}

/// The answer to one request, and its effect on the store.
pub async fn answer(store: &BlockStore, request: Request) -> Response {
    match request {
        Request::StoreBlock {
            block,
            owner,
            signature,
        } => {
            if block.len() > MAX_SEALED_BLOCK {
                return refused(format!("a block is at most {MAX_SEALED_BLOCK} bytes"));
            }
            let id = BlockId::of(&block);
            let key = match PublicKey::from_der(&owner) {
                Ok(key) => key,
                Err(e) => return refused(format!("owner key: {e}")),
            };
            if key.verify(&store_statement(&id), &signature).is_err() {
                return refused("the owner's signature does not cover this block");
            }
            match store.put(id, block, sha256(&owner)).await {
                Ok(()) => Response::Stored,
                Err(e) => refused(e.to_string()),
            }
        }
        Request::FetchBlock { id } => match store.get(&id).await {
            Ok(Some(bytes)) => Response::Block { bytes },
            Ok(None) => refused("block not held here"),
            Err(e) => refused(e.to_string()),
        },
        Request::DeleteBlock {
            id,
            owner,
            signature,
        } => {
            let Ok(key) = PublicKey::from_der(&owner) else {
                return refused("unusable owner key");
            };
            if key.verify(&delete_statement(&id), &signature).is_err() {
                return refused("the owner's signature does not cover this delete");
            }
            match store.owner_of(&id).await {
                Ok(Some(held_by)) if held_by == sha256(&owner) => match store.delete(&id).await {
                    Ok(_) => Response::Deleted,
                    Err(e) => refused(e.to_string()),
                },
                Ok(Some(_)) => refused("only the block's owner may delete it"),
                Ok(None) => Response::Deleted,
                Err(e) => refused(e.to_string()),
            }
        }
        Request::Hello { .. } => refused("hello is answered by the network layer"),
    }
}
