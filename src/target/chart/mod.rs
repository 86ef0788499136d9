//! MAAS deployed by the MaaS Helm chart on kind.
