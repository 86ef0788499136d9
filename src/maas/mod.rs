//! The MAAS 2.8 REST API 2.0 client every target shares, and the typed
//! objects the sim region serves (one set of types for both sides).

pub mod client;
pub mod oauth;
pub mod types;
pub mod wait;

pub use client::{
    CommissionOptions, EnlistRequest, EventQuery, MaasClient, MaasError, RetryPolicy,
    install_crypto_provider,
};
pub use oauth::{ApiKey, ApiKeyError, OAuthError, OAuthParams};
pub use types::*;
pub use wait::{Timeline, TimelineEntry, WaitError};
