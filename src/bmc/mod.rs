//! The virtual BMC: many BMCs in one async process (see docs/bmc.md).
