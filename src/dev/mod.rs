//! Developer tools: the BILLmanager-compatible schema and a deterministic
//! generator of realistic billing data, for tests, the demo and benchmarks.
//! Nothing here runs in panel mode.

pub mod rng;
pub mod schema;
pub mod seed;
