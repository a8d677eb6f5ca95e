//! `zmtp broker`.
use crate::error::Result;
/// Runs it.
pub fn run(_a: impl std::fmt::Debug) -> Result { Ok(()) }
