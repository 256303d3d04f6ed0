//! End-to-end tests against the real-Docker test bed (`tests/testbed/testbed.sh`).
//!
//! Every test here is `#[ignore]`d, so a plain `cargo test` needs no Docker. Run them with:
//!
//! ```text
//! tests/testbed/testbed.sh up            # as root
//! eval "$(tests/testbed/testbed.sh env)"
//! cargo test --test e2e -- --ignored
//! ```

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod container;
mod crash;
mod doctor;
mod faults;
mod fidelity;
mod listen;
mod observe;
mod operator;
mod plan;
mod ratelimit;
mod testbed_smoke;
mod versions;
mod when;
