//! What pullpilot remembers between runs: soak candidates, pins, blocked digests, history and
//! the journal of in-flight updates. `schema` is the file format; `store` loads it and, through a [`Store`] that holds the run lock, saves it; `record`
//! is every change a run makes.

pub mod record;
pub mod schema;
pub mod store;

pub use schema::{
    Approval, Blocked, Candidate, ComposeStep, ContainerState, HistoryEntry, ImageLabels,
    JournalEntry, Pause, Phase, Pin, Retag, State,
};
pub use store::{Loaded, Store, load, load_read_only};
