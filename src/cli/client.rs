//! A small HTTP client for the commands that talk to a log.
