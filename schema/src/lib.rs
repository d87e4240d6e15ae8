//! The hcpc language schema and the HyperShift objects it renders.
//!
//! `lang` describes every node and property of the KDL language (used by the
//! compiler to validate input and by `hcpc schema` to print it as JSON);
//! `hypershift` holds the typed HostedCluster and NodePool shapes; `labels`
//! the ownership marks.

pub mod hypershift;
pub mod immutable;
pub mod labels;
pub mod lang;
