//! Run snapshots: versioned RON save/load, replay, compare.
