//! Where an auditor reads a log from: a server over HTTP (its static tile API, plus the
//! consistency-proof route when it has one), a directory holding a static tree (what
//! `candor export` writes), or a log opened in-process.

use crate::log::Log;
use crate::merkle::Hash;
use crate::note;
use crate::tile::TileId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source could not be reached or answered badly: a usage or network error.
    #[error("{0}")]
    Unreachable(String),
}

pub trait Source: Send + Sync {
    /// The latest signed checkpoint.
    fn checkpoint(&self) -> Result<String, SourceError>;
    /// A tile's bytes, or None if the source says it does not exist.
    fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError>;
    /// A consistency proof, where the source can make one.
    fn consistency(&self, _from: u64, _to: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        Ok(None)
    }
    /// The log's published statistics for a query string (spec 6.3), where it serves them.
    fn stats(&self, _query: &str) -> Result<Option<serde_json::Value>, SourceError> {
        Ok(None)
    }
    /// What to call it in messages.
    fn name(&self) -> String;
}

/// A log server.
pub struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(url: &str) -> Http {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build();
        Http {
            base: url.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// GET with retries for passing failures (connection errors, 5xx, 429).
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let url = format!("{}/{path}", self.base);
        let mut wait = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..5 {
            match self.agent.get(&url).call() {
                Ok(r) => {
                    let mut body = Vec::new();
                    std::io::Read::read_to_end(&mut r.into_reader(), &mut body)
                        .map_err(|e| SourceError::Unreachable(format!("{url}: {e}")))?;
                    return Ok(Some(body));
                }
                Err(ureq::Error::Status(404, _)) => return Ok(None),
                Err(ureq::Error::Status(code, _)) if code < 500 && code != 429 => {
                    return Err(SourceError::Unreachable(format!("{url}: HTTP {code}")))
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(wait);
            wait *= 2;
        }
        Err(SourceError::Unreachable(format!("{url}: {last}")))
    }
}

impl Source for Http {
    fn checkpoint(&self) -> Result<String, SourceError> {
        let b = self.get("checkpoint")?.ok_or_else(|| {
            SourceError::Unreachable(format!("{}/checkpoint: not found", self.base))
        })?;
        String::from_utf8(b)
            .map_err(|_| SourceError::Unreachable("the checkpoint is not UTF-8".into()))
    }

    fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        self.get(&id.path())
    }

    fn consistency(&self, from: u64, to: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        let Some(body) = self.get(&format!("api/v1/proof/consistency?from={from}&to={to}"))? else {
            return Ok(None);
        };
        let bad = || SourceError::Unreachable("malformed consistency proof".into());
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| bad())?;
        v["hashes"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(note::decode_b64)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<Hash>, _>>()
            .map(Some)
    }

    fn stats(&self, query: &str) -> Result<Option<serde_json::Value>, SourceError> {
        let Some(body) = self.get(&format!("api/v1/stats?{query}"))? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|_| SourceError::Unreachable("malformed stats answer".into()))
    }

    fn name(&self) -> String {
        self.base.clone()
    }
}

/// A static tree in a directory.
pub struct Dir(pub PathBuf);

impl Source for Dir {
    fn checkpoint(&self) -> Result<String, SourceError> {
        std::fs::read_to_string(self.0.join("checkpoint"))
            .map_err(|e| SourceError::Unreachable(format!("{}/checkpoint: {e}", self.0.display())))
    }

    fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        match std::fs::read(self.0.join(id.path())) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::Unreachable(format!("{}: {e}", id.path()))),
        }
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

/// A log opened in this process (for `candor export` of a stopped server's data).
pub struct Local(pub Arc<Log>);

impl Source for Local {
    fn checkpoint(&self) -> Result<String, SourceError> {
        self.0
            .published()
            .map(|p| p.signed.clone())
            .ok_or_else(|| SourceError::Unreachable("the log has no checkpoint".into()))
    }

    fn tile(&self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        self.0
            .tile(id)
            .map_err(|e| SourceError::Unreachable(e.to_string()))
    }

    fn consistency(&self, from: u64, to: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        self.0
            .consistency_proof(from, to)
            .map(Some)
            .map_err(|e| SourceError::Unreachable(e.to_string()))
    }

    fn name(&self) -> String {
        self.0.origin.clone()
    }
}
