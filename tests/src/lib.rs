//! Shared helpers for floe integration tests.
