//! Entry points for the fuzz crate (private feature `_fuzz`; not a stable API).
