//! A stateful fake engine for unit tests (filled in with the executor's tests).
