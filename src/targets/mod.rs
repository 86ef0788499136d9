//! What MAAS is under test: sim, chart or external (none has no target).

pub mod chart;
pub mod external;
pub mod sim;
