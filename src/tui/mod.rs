//! The dashboard: App state, views, and the terminal loop.
