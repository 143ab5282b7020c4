//! Unit tests of the executor's step ordering and rollback branches, on the
//! fake engine (`engine/fake.rs`) with tokio's paused time.
