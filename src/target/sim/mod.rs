//! The reference MAAS-compatible region and rack (never claims to be MAAS).
