//! Data-plane tests with real kernel objects and real packets (root; each test skips with the
//! reason when it cannot run). Guests are network namespaces plugged into the agent's bridges.

mod common;
mod l2_dhcp;
mod metadata;
mod reconcile;
mod router;
mod security;
mod segments;
