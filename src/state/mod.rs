//! What pullpilot remembers between runs: soak candidates, pins, blocked digests, history and
//! the journal of in-flight updates. `schema` is the file format; `store` loads and saves it.

pub mod record;
pub mod schema;
pub mod store;

pub use schema::{
    Blocked, Candidate, ContainerState, HistoryEntry, JournalEntry, Phase, Pin, State,
};
pub use store::{Loaded, load, load_read_only, save};
