//! Renderers only: they turn what the core computed into text, and never compute.

pub mod compare;
pub mod probe;
mod provenance;
pub mod summary;

#[cfg(test)]
mod snapshots;
