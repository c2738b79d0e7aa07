//! Candor: a public, append-only, verifiable ledger of the government demands that
//! technology companies receive. See ARCHITECTURE.md for a map of the code.

pub mod checkpoint;
pub mod entry;
pub mod log;
pub mod merkle;
pub mod note;
pub mod sequencer;
pub mod store;
pub mod tile;
pub mod problem;
pub mod receipt;
pub mod statement;
pub mod api;
pub mod keyfile;
pub mod service;
pub mod cli;
