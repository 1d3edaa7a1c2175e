//! What a change's transaction writes besides the change itself: its audit
//! rows, by whom, and, when the request carries an `Idempotency-Key`, the
//! response the request will get, so that no crash can leave a committed
//! change whose retry runs it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::db::{AsConn, idempotency};
use crate::domain::audit::AuditActor;
use crate::domain::idempotency::KeySecrets;
use crate::error::ApiError;

/// A response as it is stored for a replay: status and body (JSON, or empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self { status, body })
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
        }
    }
}

/// The `Idempotency-Key` a request holds, as it was claimed.
#[derive(Clone)]
pub struct IdempotencyClaim {
    pub scope: String,
    pub key_hash: String,
    pub claim: String,
    pub secrets: KeySecrets,
    /// The change's transaction stores a provisional answer and keeps the
    /// claim; the request stores its final answer once it has rendered it
    /// (GraphQL, whose answer is resolved after the change commits).
    pub provisional: bool,
    /// Set once the change's transaction, having stored the request's final
    /// answer, committed ([`Commit::committed`]): nothing is left to store.
    pub kept: Arc<AtomicBool>,
}

/// The refusal when a claim was lost (another node took the key over).
pub fn in_progress() -> ApiError {
    ApiError::Conflict {
        code: "idempotency_in_progress",
        message: "a request with this Idempotency-Key is still running; retry later",
    }
}

impl IdempotencyClaim {
    /// Stores `reply` as the key's response and ends the claim (or, for a
    /// provisional claim, stores it and keeps the claim). Inside the
    /// change's transaction: if the claim was lost, the change rolls back.
    pub async fn complete(&self, conn: &mut impl AsConn, reply: &Reply) -> Result<(), ApiError> {
        let stored = if self.provisional {
            let sealed = self.seal(reply)?;
            let (scope, key, claim) = (&self.scope, &self.key_hash, &self.claim);
            idempotency::mark(conn, scope, key, claim, reply.status, sealed).await?
        } else {
            self.store(conn, reply).await?
        };
        if stored { Ok(()) } else { Err(in_progress()) }
    }

    /// Stores `reply` if the claim is still held; false if it is not (the
    /// change's transaction already stored it, or the key was taken over).
    pub async fn store(&self, conn: &mut impl AsConn, reply: &Reply) -> Result<bool, ApiError> {
        let sealed = self.seal(reply)?;
        let (scope, key, claim) = (&self.scope, &self.key_hash, &self.claim);
        Ok(idempotency::complete(conn, scope, key, claim, reply.status, sealed).await?)
    }

    /// Whether the change's own transaction kept the final answer.
    pub fn is_kept(&self) -> bool {
        self.kept.load(Ordering::Acquire)
    }

    fn seal(&self, reply: &Reply) -> Result<Vec<u8>, ApiError> {
        self.secrets
            .seal(reply.status, &reply.body)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a response too large to seal")))
    }
}

type Render<T> = Arc<dyn Fn(&T) -> Result<Reply, ApiError> + Send + Sync>;

/// A change's companions, for a change whose outcome is a `T`.
pub struct Commit<T> {
    /// Who asked: the audit rows' actor.
    pub actor: AuditActor,
    idempotency: Option<IdempotencyClaim>,
    render: Render<T>,
}

impl<T> Clone for Commit<T> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
            idempotency: self.idempotency.clone(),
            render: self.render.clone(),
        }
    }
}

impl<T> Commit<T> {
    /// `render` is how the request answers a `T`: the same bytes are stored
    /// under its Idempotency-Key and sent.
    pub fn new(
        actor: AuditActor,
        idempotency: Option<IdempotencyClaim>,
        render: impl Fn(&T) -> Result<Reply, ApiError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            actor,
            idempotency,
            render: Arc::new(render),
        }
    }

    /// A change made outside any request (the command line, tests): no key.
    pub fn unkeyed(actor: AuditActor) -> Self {
        Self::new(actor, None, |_| Ok(Reply::empty(204)))
    }

    /// Inside the change's transaction, with `value` what the request will
    /// answer: stores the answer under the request's key, if it has one.
    pub async fn seal(&self, conn: &mut impl AsConn, value: &T) -> Result<(), ApiError> {
        match &self.idempotency {
            Some(claim) => claim.complete(conn, &(self.render)(value)?).await,
            None => Ok(()),
        }
    }

    /// After the transaction that called [`seal`](Self::seal) committed:
    /// the request's final answer is kept, and the request need not store
    /// it again. (Not for a provisional claim, whose request stores its
    /// final answer itself.)
    pub fn committed(&self) {
        if let Some(claim) = &self.idempotency
            && !claim.provisional
        {
            claim.kept.store(true, Ordering::Release);
        }
    }

    /// Whether the request carries an Idempotency-Key (whose answer `seal`
    /// writes in the change's transaction).
    pub fn is_keyed(&self) -> bool {
        self.idempotency.is_some()
    }

    /// The answer itself, byte for byte what `seal` stored.
    pub fn reply(&self, value: &T) -> Result<Reply, ApiError> {
        (self.render)(value)
    }
}
