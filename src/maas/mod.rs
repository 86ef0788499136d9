//! The MAAS 2.8 REST API 2.0 client every target shares.
