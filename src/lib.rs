//! Candor: a public, append-only, verifiable ledger of the government demands that
//! technology companies receive. See ARCHITECTURE.md for a map of the code.

pub mod api;
pub mod audit;
pub mod checkpoint;
pub mod cli;
pub mod demo;
pub mod entry;
pub mod keyfile;
pub mod log;
pub mod memory;
pub mod merkle;
pub mod metrics;
pub mod mirror;
pub mod note;
pub mod problem;
pub mod receipt;
pub mod scan;
pub mod sequencer;
pub mod service;
pub mod statement;
pub mod stats;
pub mod store;
pub mod tile;
pub mod web;
