//! Access predicates and list filters (being written).
