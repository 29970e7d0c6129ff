//! Mapping files.
