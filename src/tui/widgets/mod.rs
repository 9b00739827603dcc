//! Custom widgets the stock ratatui set lacks.

pub mod heatmap;

pub use heatmap::Heatmap;
